"""Results tables of the benchmark: one row per method, the nine summary figures as columns.

    rows = {"my method": evaluate(pred_dir, gt_dir)}
    write_tables(out_dir, rows, meta="BSDS500 test, 200 images")  # bsds500_results.md and .csv

Published figures (:data:`PUBLISHED`) are quoted beside computed rows, marked as such, never
mixed with them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

# the summary keys of wnet.bsds.evaluate, in table order, and their headers
COLUMNS = [
    "sc_ods",
    "sc_ois",
    "pri_ods",
    "pri_ois",
    "vi_ods",
    "vi_ois",
    "bdry_ods_f",
    "bdry_ois_f",
    "bdry_ap",
]
HEADERS = ["SC ODS", "SC OIS", "PRI ODS", "PRI OIS", "VI ODS", "VI OIS", "F ODS", "F OIS", "AP"]

# Arbelaez et al. 2011 (TPAMI), table 1/3, BSDS500 test: published, not computed here.
GPB_OWT_UCM = {
    "sc_ods": 0.588, "sc_ois": 0.647, "pri_ods": 0.827, "pri_ois": 0.856, "vi_ods": 1.690, "vi_ois": 1.475,
    "bdry_ods_f": 0.726, "bdry_ois_f": 0.760, "bdry_ap": 0.727,
}  # fmt: skip
# The same paper's Canny-owt-ucm row, BSDS500 test: only the ODS values were confirmed (from a
# third-party results table citing the paper, docs/postprocessing.md); the rest stay blank.
CANNY_OWT_UCM = {"sc_ods": 0.49, "pri_ods": 0.79, "vi_ods": 2.19, "bdry_ods_f": 0.60}
PUBLISHED = {  # method -> (label in the markdown table, values; a missing column is blank)
    "gPb-owt-ucm": ("gPb-owt-ucm (published, Arbelaez et al. 2011; not computed here)", GPB_OWT_UCM),
    "Canny-owt-ucm": (
        "Canny-owt-ucm (published, Arbelaez et al. 2011, ODS only; not computed here)",
        CANNY_OWT_UCM,
    ),
}


def markdown_rows(rows: dict[str, dict], published: dict | None = None) -> list[str]:
    """A markdown table: header, then one line per computed row (3 decimals; a missing figure is
    blank), then the ``published`` rows ``{name: (label, values)}``."""
    lines = [f"| method | {' | '.join(HEADERS)} |", "|---" * (len(HEADERS) + 1) + "|"]
    for name, s in rows.items():
        vals = " | ".join("" if np.isnan(s.get(c, np.nan)) else f"{s[c]:.3f}" for c in COLUMNS)
        lines.append(f"| {name} | {vals} |")
    for label, values in (published or {}).values():
        vals = " | ".join(f"{values[c]:.3f}" if c in values else "" for c in COLUMNS)
        lines.append(f"| {label} | {vals} |")
    return lines


def write_tables(
    folder: Path,
    rows: dict[str, dict],
    meta: str,
    published: dict | None = None,
    stem: str = "bsds500_results",
) -> tuple[Path, Path]:
    """``<stem>.md`` (``meta``, then the table) and ``<stem>.csv`` (4 decimals, a ``source``
    column: computed or published) in ``folder``; their paths."""
    published = PUBLISHED if published is None else published
    md, cs = Path(folder) / f"{stem}.md", Path(folder) / f"{stem}.csv"
    md.write_text(meta + "\n\n" + "\n".join(markdown_rows(rows, published)) + "\n")
    with open(cs, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", *COLUMNS, "source"])
        for name, s in rows.items():
            w.writerow([name, *[f"{s.get(c, float('nan')):.4f}" for c in COLUMNS], "computed"])
        for name, (_, values) in published.items():
            w.writerow([name, *[values.get(c, "") for c in COLUMNS], "published"])
    return md, cs
