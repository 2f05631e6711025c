"""Results files under docs/results/ and the README and docs tables rendered from them (used by reproduce.py).

Learned rows are kept per seed; tables show mean ± standard deviation over the seeds (sample std,
ddof = 1). A claim "A beats B" on a metric holds only beyond the spread: the intervals mean ± std
of A and B do not overlap.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

from wnet.tasks import bench_tables, bsds_tables, compare_tables, seeds
from wnet.tasks.bsds_tables import BSDS, OWT_ROW  # noqa: F401 (part of this module's API)
from wnet.tasks.seeds import LOWER_IS_BETTER, beats  # noqa: F401 (part of this module's API)

ROOT = Path(__file__).resolve().parents[2]  # the checkout: its docs/ and README.md
FIGURES = ROOT / "docs" / "figures"
RESULTS = ROOT / "docs" / "results"  # the stored results files the README and docs/ quote
COMPARE = ["pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou", "mean_dice"]
TIMING = {"train_time_s", "seconds"}
# The deterministic figures inside a benchmark's JSON (scores, agreement, losses, correctness flags), which
# --check compares exactly; the rest of a bench_* file is timings. Keys are dotted paths, or prefixes ending in "."
BENCH_EXACT = {
    "bench_ncut": ("ours.loss", "unfold.loss"),
    "bench_losses": ("values.", "baseline_values.", "threads", "repeats"),
    "bench_crf": ("pool_equals_loop", "torch_vs_dense_agree_pct", "dense_changed_pct", "torch_changed_pct",
                  "initial_regions_mean"),
    "bench_bsds": ("scores.", "literal_identical"),
    "bench_segment": ("crf_agreement.",),
    "baseline_scales": ("split", "images", "sweeps."),
}  # fmt: skip
JSON_JOBS = set(bench_tables.RENDER)  # jobs whose command writes one JSON results file: every benchmark


# ----------------------------------------------------------------------------- collect
def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:  # every column of every row (sittings may add columns)
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), restval="")
        w.writeheader()
        w.writerows(rows)


def collect(name: str, out: Path, dest: Path, seeds: list[int]) -> None:
    """One job's run folders -> ``dest/<name>.csv`` (tables) or ``.json`` (quick run), and its figures."""
    if name == "quick":
        log = [json.loads(line) for line in (out / "quick" / "log.jsonl").read_text().splitlines()]
        ev = [r for r in log if r["split"] == "eval"]
        res = {
            f"{k}_{when}": round(r[k], 4)
            for when, r in (("before", ev[0]), ("after", ev[-1]))
            for k in ("ncut", "recon")
        }
        (dest / "quick.json").write_text(
            json.dumps(res | {"train_time_s": round(ev[-1]["train_time"], 1)}, indent=2) + "\n"
        )
        return
    if name == "canny_owt_test":
        _collect_owt(out / name / "owt_val.json", dest / f"{name}.csv")
        return
    rows = []
    for s in seeds:
        run = out / f"{name}-s{s}"
        table = run / ("bsds500_results.csv" if name == "bsds500_cpu" else "comparison.csv")
        rows += [{"method": r.pop("method"), "seed": str(s), **r} for r in _rows(table)]
    stored = dest / f"{name}.csv"
    kept = [r for r in _rows(stored) if int(r["seed"]) not in seeds] if stored.is_file() else []
    _write_rows(stored, sorted(kept + rows, key=lambda r: int(r["seed"])))  # stable: each seed's row order
    first = out / f"{name}-s0"
    pictures = {"bsds500_pr.png": "pr.png"} if name == "bsds500_cpu" else compare_tables.figures(rows)
    if dest.resolve() == RESULTS.resolve() and 0 in seeds:  # figures: seed 0's run, in the real refresh
        for src, suffix in pictures.items():
            shutil.copy(first / src, FIGURES / f"{name}_{suffix}")


SITTING = ("date", "commit", "wall_s", "command_s", "commands", "seeds", "machine", "resumed")


def merged_meta(meta: dict, stored: Path, seeds: list[int]) -> dict:
    """The meta of a seeded table whose other seeds' rows were kept from an earlier sitting.

    ``collect`` replaces the rows of the seeds just run and keeps the stored rows of the others, so
    a long job can be regenerated a few seeds at a time. The meta then lists every sitting (its
    seeds, date, commit, commands, machine); the top level keeps this sitting's fields, with
    ``seeds`` the union. A sitting whose seeds were all rerun is dropped."""
    old = json.loads(stored.read_text()) if stored.is_file() else {}
    kept = sorted(set(old.get("seeds", [])) - set(seeds))
    if not kept:
        return meta
    earlier = old.get("sittings") or [{k: old[k] for k in SITTING if k in old}]
    earlier = [s | {"seeds": [x for x in s["seeds"] if x in kept]} for s in earlier]
    this = {k: meta[k] for k in SITTING if k in meta}
    return meta | {
        "seeds": sorted(kept + list(seeds)),
        "sittings": [s for s in earlier if s["seeds"]] + [this],
        **({"note": old["note"]} if "note" in old and "note" not in meta else {}),
    }


def seed_sitting(meta: dict, seed: int) -> dict:
    """The sitting of a seeded job's meta (as :func:`merged_meta` writes it) that made ``seed``'s rows: a job regenerated a few seeds at
    a time lists its sittings, and the top level is only the latest one."""
    sittings = meta.get("sittings") or [meta]
    return next((s for s in sittings if seed in s.get("seeds", [])), meta)


def _collect_owt(results: Path, dest: Path) -> None:
    """owt_val.py's JSON (deterministic rows, run once) -> a CSV like a bsds500_cpu table's, with the
    same 4 decimals as ``bsds500_results.csv``, and each row's benchmark time as a timing."""
    rows = [
        {"method": m, "seed": "", **{c: f"{r[c]:.4f}" for c in BSDS}, "seconds": f"{r['seconds']:.1f}", "source": "computed"}
        for m, r in json.loads(results.read_text()).items()
    ]  # fmt: skip
    _write_rows(dest, rows)


# ----------------------------------------------------------------------------- compare (--check)
def _load(name: str, folder: Path):
    csv_path, json_path = folder / f"{name}.csv", folder / f"{name}.json"
    if csv_path.is_file():  # a comparison's rows are per split too; the val5 file has no seed column
        return {
            (r["method"], r.get("seed", ""), *([r["split"]] if "split" in r else [])): r
            for r in _rows(csv_path)
        }
    return json.loads(json_path.read_text()) if json_path.is_file() else None


def compare(name: str, stored_dir: Path, fresh_dir: Path, seeds: list[int] | None = None) -> list[str]:
    """Differences between the stored and the fresh results: ``MISMATCH`` lines for deterministic
    figures (compared exactly, as written), ``timing`` lines (ratio only) for the rest.

    ``seeds`` limits a seeded table to the stored rows of those training seeds, so that a long job
    can be checked a few seeds at a time. bsds500_cpu's baselines are stored under seed 0 (they
    are scored in seed 0's run): they are checked when the rerun's seeds include 0.
    None compares every stored row."""
    stored, fresh = _load(name, stored_dir), _load(name, fresh_dir)
    if stored is None:
        return [f"MISMATCH {name}: no stored results in {stored_dir} (run reproduce.py --only {name})"]
    if seeds is not None and isinstance(stored, dict) and all(isinstance(k, tuple) for k in stored):
        stored = {k: v for k, v in stored.items() if k[1] in {str(s) for s in seeds}}
    out = []
    if name in JSON_JOBS:
        return _compare_bench(name, stored, fresh)
    keys = stored.keys() if isinstance(stored, dict) and name != "quick" else [None]
    for key in keys:
        a, b = (stored, fresh) if key is None else (stored[key], fresh.get(key, {}))
        for col, value in a.items():
            if col in ("method", "seed", "split", "loss", "source"):
                continue
            now = b.get(col)
            if col in TIMING:
                if now not in (None, "") and float(value):
                    out.append(
                        f"   timing {key or name} {col}: stored {value}, now {now} (x{float(now) / float(value):.2f})"
                    )
            elif str(now) != str(value):
                out.append(f"MISMATCH {name} {key or ''} {col}: stored {value}, now {now}")
    return out


def _compare_bench(name: str, stored: dict, fresh: dict) -> list[str]:
    """A benchmark's deterministic figures exactly (``BENCH_EXACT``), its timings as ratios."""
    exact = BENCH_EXACT.get(name, ())
    now_values, out = _leaves(fresh), []
    for key, value in _leaves(stored).items():
        now = now_values.get(key)
        if any(key == e or (e.endswith(".") and key.startswith(e)) for e in exact):
            if now != value:
                out.append(f"MISMATCH {name} {key}: stored {value}, now {now}")
        elif _is_number(value) and value and _is_number(now):
            out.append(
                f"   timing {key}: stored {value:.4g}, now {now:.4g} (x{now / value:.2f}; machine-dependent)"
            )
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _leaves(d: dict, prefix: str = "") -> dict:
    """The leaves of nested dicts under dotted keys (lists are left out)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _leaves(v, f"{prefix}{k}.")
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


# ----------------------------------------------------------------------------- render
_stats, _cell, _by_method = seeds.stats, seeds.cell, seeds.by_key


def _caption(meta: dict, note: bool = True) -> str:
    def one(m: dict) -> str:
        seeds = m.get("seeds") or []
        seeded = f", seeds {', '.join(map(str, seeds))}" if seeds else ""
        return f"{m['date']} at commit {m['commit']} ({m['wall_s'] / 60:.0f} min{seeded}; {m['machine']})"

    sittings = meta.get("sittings")
    when = f"in {len(sittings)} sittings: " + "; ".join(map(one, sittings)) if sittings else one(meta)
    return f"Regenerated {when}." + (f" {meta['note']}" if note and meta.get("note") else "")


def render(name: str, results: Path, view: str = "") -> str:
    """One job's block: its table with a caption (``view`` ""), the same without the meta's note
    (``"headline"``, for the README), one sentence (``"summary"``), bench_bsds's scores as a
    table row (``"scores"``), or bsds500_cpu's hierarchy rows seed by seed (``"pri_by_seed"``)."""
    if name in bench_tables.JSON_ONLY:  # files that carry their own provenance (no .meta.json)
        return "\n".join(bench_tables.JSON_ONLY[name](json.loads((results / f"{name}.json").read_text())))
    meta = json.loads((results / f"{name}.meta.json").read_text())
    if view == "summary":
        return _summary(name, results, meta)
    if name == "quick":
        q = json.loads((results / "quick.json").read_text())
        return (
            f"Held-out soft N-Cut {q['ncut_before']:.2f} → {q['ncut_after']:.2f} (K = 8, so J lies in [0, 8)), "
            f"reconstruction MSE {q['recon_before']:.3f} → {q['recon_after']:.3f}, with `train.threads=1` "
            f"({q['train_time_s']:.0f} s of training: a timing, which varies by machine). {_caption(meta, view != 'headline')}"
        )
    if name in JSON_JOBS:
        res = json.loads((results / f"{name}.json").read_text())
        if view == "scores":  # bench_bsds's deterministic scores, as a table row
            return "\n".join([_caption(meta), "", *bench_tables.bsds_scores(res)])
        timings = "Timings; they vary by machine. " if name.startswith("bench_") else ""
        return "\n".join([f"{timings}{_caption(meta, view != 'headline')}", "",
                          *bench_tables.RENDER[name](res)])  # fmt: skip
    rows = _rows(results / f"{name}.csv")
    if view == "pri_by_seed":  # bsds500_cpu: each hierarchy row's PRI at ODS, seed by seed
        return bsds_tables.pri_by_seed(rows)
    meta = meta if view != "headline" else {k: v for k, v in meta.items() if k != "note"}
    if name == "canny_owt_test":
        return bsds_tables.render(
            [r | {"method": f"{r['method']} (computed here)"} for r in rows], _caption(meta)
        )
    return bsds_tables.render(rows, _caption(meta)) if name == "bsds500_cpu" else _render_compare(rows, meta)


def _summary(name: str, results: Path, meta: dict) -> str:
    """One sentence per job for the README, from its results file."""
    cores = re.search(r"(\d+) cores", meta["machine"])
    when = f"({meta['date']}, {f'a {cores.group(1)}-core CPU' if cores else meta['machine']})"
    if name.startswith("bench_"):
        return f"{bench_tables.ncut_summary(json.loads((results / f'{name}.json').read_text()))} {when}."
    if name == "bsds500_cpu":
        return bsds_tables.answers(_rows(results / f"{name}.csv"), meta["seeds"])
    stats = _by_method(_rows(results / f"{name}.csv"), [*COMPARE, *BSDS])
    if name == "canny_owt_test":
        (canny,) = stats.values()
        by_method = _by_method(_rows(results / "bsds500_cpu.csv"), BSDS)
        wnet = by_method.get(OWT_ROW) or by_method.get(
            "W-Net + CRF + OWT-UCM", {}
        )  # the row's name before gPb
        cols = {"sc_ods": "SC", "pri_ods": "PRI", "vi_ods": "VI", "bdry_ods_f": "boundary F"}
        return (
            "Canny-owt-ucm computed in this harness, at ODS: "
            + ", ".join(
                f"{label} {_cell(canny[c])} (W-Net soft-map OWT-UCM {_cell(wnet.get(c, []))})"
                for c, label in cols.items()
            )
            + "."
        )
    if "split" in _rows(results / f"{name}.csv")[0]:
        return compare_tables.summary(_rows(results / f"{name}.csv"), meta["seeds"])
    sup = {m: s["miou"] for m, s in stats.items() if m.startswith("unet")}
    best = max(sup, key=lambda m: _stats(sup[m])[0])
    better = sum(beats(v, stats["wnet"]["miou"], "miou") for v in sup.values())
    return (
        f"W-Net (clusters Hungarian-matched to the classes) {_cell(stats['wnet']['miou'], 3)} mIoU; the best "
        f"supervised U-Net ({best.removeprefix('unet-')} loss) {_cell(sup[best], 3)}; beyond the spread, "
        f"{better} of {len(sup)} supervised losses beat W-Net (seeds {', '.join(map(str, meta['seeds']))})."
    )


def _render_compare(rows: list[dict], meta: dict) -> str:
    if "split" in rows[0]:  # one row per method, seed and split (results files before it had val only)
        return compare_tables.render(rows, _caption(meta))
    stats = _by_method(rows, [*COMPARE, "train_time_s"])
    head = "| method | loss | pixel acc. | mean pixel acc. | mIoU | FWIoU | mean Dice | train time (s) |"
    lines = [_caption(meta), "", head, "|---" * 8 + "|"]
    losses = {r["method"]: r["loss"] for r in rows}
    for m, s in stats.items():
        lines.append(
            f"| {m} | {losses[m]} | "
            + " | ".join(_cell(s[c], 4) for c in COMPARE)
            + f" | {_cell(s['train_time_s'], 0)} |"
        )
    wnet = stats.get("wnet", {}).get("miou")
    if wnet:
        better = [m for m, s in stats.items() if m.startswith("unet") and beats(s["miou"], wnet, "miou")]
        rest = [m for m, s in stats.items() if m.startswith("unet") and m not in better]
        lines += ["", f"Beyond the spread on mIoU, {len(better)} of {len(better) + len(rest)} supervised rows beat W-Net"
                  + (f" (not: {', '.join(rest)})." if rest else ".")]  # fmt: skip
    return "\n".join(lines)


BLOCK = re.compile(r"<!-- reproduce:(\w+)(?::(\w+))? -->\n.*?<!-- /reproduce:\1(?::\2)? -->", re.S)


def render_markdown(path: Path, results: Path) -> None:
    """Replace every ``<!-- reproduce:NAME[:VIEW] -->`` ... ``<!-- /reproduce:NAME[:VIEW] -->`` block of a
    markdown file by its rendering (:func:`render`); a block whose results do not exist yet is left alone."""

    def block(m: re.Match) -> str:
        name, view = m.group(1), m.group(2) or ""
        own = results / (f"{name}.json" if name in bench_tables.JSON_ONLY else f"{name}.meta.json")
        if not own.is_file():
            return m.group(0)
        spec = f"{name}:{view}" if view else name
        return f"<!-- reproduce:{spec} -->\n{render(name, results, view)}\n<!-- /reproduce:{spec} -->"

    text = path.read_text()
    new = BLOCK.sub(block, text)
    if new != text:
        path.write_text(new)


def rendered_files(root: Path) -> list[Path]:
    """The markdown files that hold rendered blocks: the README and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def render_docs(root: Path, results: Path) -> None:
    """Render every results block of the README and docs/ from ``results``."""
    for path in rendered_files(root):
        render_markdown(path, results)
