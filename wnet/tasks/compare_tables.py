"""The tables of ``task=compare``: ``comparison.csv`` (one row per method and split) and ``comparison.md``.

A W-Net row whose positional kappa lies above both :data:`wnet.positional.TILING_KAPPA` and the
ground truth's kappa on the same images is flagged (:data:`FLAG`): its label maps follow pixel
position more than the scenes' own shared layout does, so its score measures a content-blind
tiling as much as the images (``wnet/positional.py``, ``docs/positional.md``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from wnet.evaluation import scores_row
from wnet.positional import TILING_KAPPA, looks_tiled
from wnet.tasks import seeds

COLUMNS = [
    "method",
    "loss",
    "split",
    "pixel_accuracy",
    "mean_pixel_accuracy",
    "miou",
    "fwiou",
    "mean_dice",
    "positional_kappa",
    "labels_kappa",
    "train_time_s",
]
SCORES = COLUMNS[3:8]
HEADERS = ["method", "loss", "split", "pixel acc.", "mean pixel acc.", "mIoU", "FWIoU", "mean Dice",
           "positional κ", "labels' κ", "train time (s)"]  # fmt: skip
FLAG = "⚠"
FLAG_NOTE = (
    f"{FLAG}: a W-Net row whose positional kappa is above both {TILING_KAPPA} and the labels' kappa on the same "
    "images: different images get mostly the same label map, position by position (wnet/positional.py)."
)


def is_wnet(method: str) -> bool:
    """The rows the tiling flag applies to: W-Net's (supervised nets learn the labels' layout on purpose)."""
    return method.startswith("wnet")


def table_rows(results: list[dict]) -> list[list]:
    """One list per result in :data:`COLUMNS` order (scores as floats)."""
    rows = []
    for r in results:
        s, ev = scores_row(r["eval"]["scores"]), r["eval"]
        kappas = [float(ev.get("positional_kappa", np.nan)), float(ev.get("labels_kappa", np.nan))]
        rows.append([r["method"], r["loss"], r["split"], *(s[k] for k in SCORES), *kappas, r["train_time"]])
    return rows


def kappa_cell(method: str, kappa: float, labels_kappa: float) -> str:
    """The positional kappa to 3 decimals, flagged for a W-Net row that looks tiled."""
    flag = f" {FLAG}" if is_wnet(method) and looks_tiled(kappa, labels_kappa) else ""
    return f"{kappa:.3f}{flag}"


def write_tables(
    run_dir: Path, rows: list[list], class_names: list[str], results: list[dict], header: str
) -> None:
    """``comparison.csv`` (one row per method and split) and ``comparison.md`` (scores with the positional
    kappas, then per-class IoU for each split)."""
    with open(run_dir / "comparison.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows([[*r[:3], *(f"{v:.4f}" for v in r[3:-1]), f"{r[-1]:.1f}"] for r in rows])
    lines = [header, "", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows:
        scores = " | ".join(f"{v:.4f}" for v in r[3:8])
        lines.append(
            f"| {r[0]} | {r[1]} | {r[2]} | {scores} | {kappa_cell(r[0], r[8], r[9])} | {r[9]:.3f} | {r[10]:.0f} |"
        )
    if any(FLAG in line for line in lines[4:]):
        lines += ["", FLAG_NOTE]
    for split in dict.fromkeys(r["split"] for r in results):
        lines += ["", f"Per-class IoU on `{split}`:", "", "| method | " + " | ".join(class_names) + " |"]
        lines += ["|" + "---|" * (len(class_names) + 1)]
        for r in (r for r in results if r["split"] == split):
            iou = r["eval"]["scores"]["iou"]
            lines.append(
                f"| {r['method']} | " + " | ".join("n/a" if np.isnan(v) else f"{v:.3f}" for v in iou) + " |"
            )
    (run_dir / "comparison.md").write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- over seeds (docs/results)
def figures(rows: list[dict]) -> dict[str, str]:
    """A comparison's pictures -> their suffix under docs/figures: the first split's (``data.eval_split``)
    keep the plain names, another split's get ``_<split>``."""
    splits = list(dict.fromkeys(r["split"] for r in rows)) if rows and "split" in rows[0] else []
    if not splits:  # run folders written before the split column
        return {"per_class_iou.png": "per_class_iou.png", "grid.png": "grid.png"}
    tails = {s: "" if i == 0 else f"_{s}" for i, s in enumerate(splits)}
    return {f"{kind}_{s}.png": f"{kind}{tails[s]}.png" for s in splits for kind in ("per_class_iou", "grid")}


def _flagged(rows: list[dict], method: str, split: str) -> list[bool]:
    """Per seed, whether the row of ``method`` on ``split`` looks tiled (W-Net rows only)."""
    return [
        is_wnet(method) and looks_tiled(float(r["positional_kappa"]), float(r["labels_kappa"]))
        for r in rows
        if (r["method"], r["split"]) == (method, split)
    ]


def render(rows: list[dict], caption: str) -> str:
    """The seeds' table (mean ± std per method and split, the positional kappas and flags), then its claims."""
    cols = [*SCORES, "positional_kappa", "labels_kappa", "train_time_s"]
    stats = seeds.by_key(rows, cols, key=lambda r: (r["method"], r["split"]))
    losses = {r["method"]: r["loss"] for r in rows}
    splits, methods = (list(dict.fromkeys(r[k] for r in rows)) for k in ("split", "method"))
    head = (
        "| method | loss | split | "
        + " | ".join(HEADERS[3:8])
        + " | positional κ (labels' κ) | train time (s) |"
    )
    lines = [caption, "", head, "|---" * 10 + "|"]
    for split in splits:
        for m in (m for m in methods if (m, split) in stats):
            s, flags = stats[(m, split)], _flagged(rows, m, split)
            flag = f" {FLAG} {sum(flags)} of {len(flags)} seeds" if any(flags) else ""
            kappa = f"{seeds.cell(s['positional_kappa'])} ({seeds.cell(s['labels_kappa'])}){flag}"
            scores = " | ".join(seeds.cell(s[c], 4) for c in SCORES)
            lines.append(
                f"| {m} | {losses[m]} | {split} | {scores} | {kappa} | {seeds.cell(s['train_time_s'], 0)} |"
            )
    if FLAG in "\n".join(lines[4:]):
        lines += ["", FLAG_NOTE]
    return "\n".join([*lines, "", *claims(rows, stats, methods, splits)])


def _beaten(stats: dict, methods: list[str], split: str) -> tuple[list[str], list[str]]:
    """(supervised rows that beat W-Net on ``split`` beyond the spread on mIoU, those that do not)."""
    wnet = stats.get(("wnet", split), {}).get("miou")
    sup = [m for m in methods if m.startswith("unet") and (m, split) in stats]
    better = [m for m in sup if wnet and seeds.beats(stats[(m, split)]["miou"], wnet, "miou")]
    return better, [m for m in sup if m not in better]


def transfer(rows: list[dict], stats: dict, method: str, ref: str, split: str) -> tuple[bool | None, str]:
    """Whether ``method``'s scores on ``split`` hold what ``ref`` says, seed by seed: no mIoU below ``ref``'s
    mean - 2 std (inside the spread, or above it) and (W-Net) no tiling flag (None: one seed, no spread
    to judge); and the sentence that says so, with the numbers."""
    a, b = stats[(method, ref)]["miou"], stats[(method, split)]["miou"]
    inside, below, flags = seeds.inside_spread(b, a), seeds.below_spread(b, a), _flagged(rows, method, split)
    ok = None if len(a) < 2 else below == 0 and not any(flags)
    values = " / ".join(f"{v:.3f}" for v in b)
    if ok is None:
        text = f"mIoU on `{split}` {values} (one seed: no `{ref}` spread to compare with)"
    else:
        lo, hi = seeds.spread(a)
        text = f"mIoU on `{split}` {values}, inside its `{ref}` spread [{lo:.3f}, {hi:.3f}] for {inside} of {len(b)} seeds"
        text += f", below it for {below}" + (
            f", above it for {len(b) - inside - below}" if inside + below < len(b) else ""
        )
    if is_wnet(method):
        kappas = " / ".join(f"{v:.2f}" for v in stats[(method, split)]["positional_kappa"])
        labels = seeds.cell(stats[(method, split)]["labels_kappa"])
        text += f"; positional kappa {kappas} against the labels' {labels}, flagged ({FLAG}) for {sum(flags)} of {len(flags)}"
    return ok, text


VERDICT = {True: "transfers to", False: "does not transfer to", None: "on"}  # None: one seed


def claims(rows: list[dict], stats: dict, methods: list[str], splits: list[str]) -> list[str]:
    """Sentences under the seeds' table: who beats W-Net on each split, and what transfers from the first split."""
    out = []
    for split in splits:
        better, rest = _beaten(stats, methods, split)
        if ("wnet", split) in stats and better + rest:
            out.append(f"On `{split}`, beyond the spread on mIoU, {len(better)} of {len(better) + len(rest)} "
                       f"supervised rows beat W-Net" + (f" (not: {', '.join(rest)})." if rest else "."))  # fmt: skip
    ref = splits[0]
    for split in splits[1:]:
        for m in (m for m in methods if is_wnet(m) and (m, ref) in stats and (m, split) in stats):
            ok, text = transfer(rows, stats, m, ref, split)
            out.append(f"`{m}` {VERDICT[ok]} `{split}`: {text}.")
        sup = [
            (m, transfer(rows, stats, m, ref, split)[0])
            for m in methods
            if m.startswith("unet") and (m, split) in stats
        ]
        if sup and None not in dict(sup).values():
            held = ", ".join(m for m, ok in sup if ok) or "none"
            out.append(f"Supervised rows with no seed's `{split}` mIoU below their `{ref}` spread (mean - 2 std): "
                       f"{held} ({sum(ok for _, ok in sup)} of {len(sup)}).")  # fmt: skip
    return [line for s in out for line in (s, "")][:-1]


def summary(rows: list[dict], seed_list: list[int]) -> str:
    """The README's sentence: W-Net against the best supervised row on each split, and whether W-Net transfers."""
    stats = seeds.by_key(
        rows, ["miou", "positional_kappa", "labels_kappa"], key=lambda r: (r["method"], r["split"])
    )
    splits, methods = (list(dict.fromkeys(r[k] for r in rows)) for k in ("split", "method"))
    parts = []
    for i, split in enumerate(splits):
        sup = [m for m in methods if m.startswith("unet") and (m, split) in stats]
        best = max(sup, key=lambda m: seeds.stats(stats[(m, split)]["miou"])[0])
        better, rest = _beaten(stats, methods, split)
        wnet = "W-Net (clusters Hungarian-matched to the classes)" if i == 0 else "W-Net"
        parts.append(
            f"On `{split}`, {wnet} {seeds.cell(stats[('wnet', split)]['miou'])} mIoU; the best supervised U-Net "
            f"({best.removeprefix('unet-')} loss) {seeds.cell(stats[(best, split)]['miou'])}; beyond the spread, "
            f"{len(better)} of {len(better) + len(rest)} supervised losses beat W-Net."
        )
    for split in splits[1:]:
        ok, text = transfer(rows, stats, "wnet", splits[0], split)
        parts.append(f"W-Net {VERDICT[ok]} `{split}`: {text}.")
    return " ".join(parts) + f" (Training seeds {', '.join(map(str, seed_list))}.)"
