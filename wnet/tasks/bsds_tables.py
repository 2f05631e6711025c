"""The BSDS500 tables of the results files: ``bsds500_cpu.csv`` and ``canny_owt_test.csv``.

Each computed row is mean ± sample std over its seeds, beside the published rows that
:data:`wnet.bsds.table.PUBLISHED` quotes. Under the scores, each W-Net hierarchy is compared at ODS
(SC, PRI, VI) with every baseline and with the quoted gPb-owt-ucm and paper rows: "beats" and
"loses" hold only beyond the spread (:func:`wnet.tasks.seeds.beats`); a deterministic or quoted row
has no spread.
"""

from __future__ import annotations

from wnet.bsds.table import PUBLISHED
from wnet.tasks.seeds import beats, by_key, cell

BSDS = ["sc_ods", "sc_ois", "pri_ods", "pri_ois", "vi_ods", "vi_ois", "bdry_ods_f", "bdry_ois_f", "bdry_ap"]
OWT_ROW = "W-Net + CRF + OWT-UCM (soft-map contours)"  # task=bsds PIPELINE_ROW["owt"] (a test checks)
FLAT = ("W-Net raw (argmax)", "W-Net + CRF")  # label maps, not hierarchies: not compared
ANCHORS = ("gPb-owt-ucm", "W-Net (paper)", "W-Net+ucm (paper)")  # quoted rows each hierarchy is compared with
# the paper's post-processing (task=bsds PIPELINE_ROW["alg2"], ["wnet+ucm"]) and what issue 27 asks of it
PAPER_ROWS = {
    "W-Net + CRF + gPb (paper Alg. 2)": "Alg. 2",
    "W-Net + CRF + gPb-owt-ucm (paper W-Net+ucm)": "W-Net+ucm",
}
QUESTIONS = {"baseline: gpb-owt-ucm": "gPb-owt-ucm computed here", "W-Net (paper)": "the paper's W-Net row"}
ODS = {"sc_ods": "SC", "pri_ods": "PRI", "vi_ods": "VI"}


def with_published(rows: list[dict]) -> list[dict]:
    """The computed rows of a BSDS results file, then the published rows as ``wnet.bsds.table.PUBLISHED``
    quotes them now (a file written before a quote was added keeps its computed rows; missing cells blank)."""
    quoted = [{"method": m, "source": "published", **values} for m, (_, values) in PUBLISHED.items()]
    computed = [r for r in rows if r.get("source") != "published"]
    clash = sorted({r["method"] for r in computed} & set(PUBLISHED))
    if clash:  # the table would average a computed row with the quoted one of the same name
        raise ValueError(f"computed rows named like published ones: {', '.join(clash)}")
    return computed + quoted


def render(rows: list[dict], caption: str) -> str:
    """The scores table, then (when the file has baselines) each W-Net hierarchy against the anchors."""
    rows = with_published(rows)
    stats = by_key(rows, BSDS)
    published = {r["method"] for r in rows if r.get("source") == "published"}
    head = "| method | SC ODS | SC OIS | PRI ODS | PRI OIS | VI ODS | VI OIS | F ODS | F OIS | AP |"
    lines = [caption, "", head, "|---" * 10 + "|"]
    for m, s in stats.items():
        label = (
            PUBLISHED[m][0]
            if m in PUBLISHED
            else m + (" (published; not computed here)" if m in published else "")
        )
        lines.append(f"| {label} | " + " | ".join(cell(s[c]) for c in BSDS) + " |")
    if not any(m.startswith("baseline") for m in stats):
        return "\n".join(lines)
    return "\n".join([*lines, "", *verdicts(stats, published)])


def verdicts(stats: dict, published: set[str]) -> list[str]:
    """Each computed W-Net hierarchy against each baseline and anchor at ODS: beats, loses, or
    within the spread, on SC, PRI and VI (a markdown table)."""
    lines = ["| W-Net hierarchy vs another row, at ODS | SC | PRI | VI |", "|---|---|---|---|"]
    anchors = [m for m in stats if m.startswith("baseline") or m in ANCHORS]
    for w in [m for m in stats if m.startswith("W-Net") and m not in FLAT and m not in published]:
        for b in anchors:
            cells = ["beats" if beats(stats[w][c], stats[b][c], c) else ("loses" if beats(stats[b][c], stats[w][c], c) else "within the spread")
                     for c in ("sc_ods", "pri_ods", "vi_ods")]  # fmt: skip
            other = b.removeprefix("baseline: ") + (
                " (published)" if b in published and "(paper)" not in b else ""
            )
            lines.append(f"| {w} vs {other} | " + " | ".join(cells) + " |")
    return lines


def _verdict(a: list[float], b: list[float]) -> dict[str, list[str]]:
    """Per ODS column: does A beat B, lose to it, or lie within the spread (columns by verdict)."""
    out: dict[str, list[str]] = {}
    for c, label in ODS.items():
        v = "beats" if beats(a[c], b[c], c) else "loses" if beats(b[c], a[c], c) else "within the spread"
        out.setdefault(v, []).append(label)
    return out


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def answers(rows: list[dict], seeds: list[int]) -> str:
    """The two questions asked of the paper's post-processing, in words: at ODS and beyond the seed
    spread, does each of its rows beat gPb-owt-ucm alone, and does it reach the paper's W-Net row?"""
    stats = by_key(with_published(rows), BSDS)
    missing = [m for m in [*PAPER_ROWS, *QUESTIONS] if m not in stats]
    if missing:
        return f"(no answer: the results file has no row {', '.join(missing)})"

    def scores(m: str) -> str:
        return ", ".join(f"{label} {cell(stats[m][c])}" for c, label in ODS.items())

    parts = [
        f"The paper's post-processing on this model, at ODS over seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}: "
        + "; ".join(f"{short} {scores(m)}" for m, short in PAPER_ROWS.items())
        + "."
    ]
    for anchor, name in QUESTIONS.items():
        said = [
            f"{short} " + ", ".join(f"{v} on {_and(cols)}" for v, cols in _verdict(stats[m], stats[anchor]).items())
            for m, short in PAPER_ROWS.items()
        ]  # fmt: skip
        parts.append(f"Against {name} ({scores(anchor)}): {'; '.join(said)}.")
    spread = (
        '"Beats" and "loses" hold beyond the spread (mean ± std; quoted rows have none).'
        if len(seeds) > 1
        else "On one seed these are comparisons without a spread."
    )
    return " ".join([*parts, spread])


def pri_by_seed(rows: list[dict]) -> str:
    """'W-Net + CRF + hierarchy PRI ODS a / b / c and ... (seeds 0 / 1 / 2).' from a BSDS table."""
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if "hierarchy" in m or "OWT" in m]
    seeds = sorted({r["seed"] for r in rows if r["method"] in methods}, key=int)
    parts = [
        f"{m} PRI ODS " + " / ".join(f"{float(r['pri_ods']):.3f}" for s in seeds for r in rows if (r["method"], r["seed"]) == (m, s))
        for m in methods
    ]  # fmt: skip
    return " and ".join(parts) + f" (seeds {' / '.join(seeds)})."
