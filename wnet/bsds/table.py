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
REGION_COLUMNS = COLUMNS[:6]  # what the region benchmark alone (bench="region") gives

# Arbelaez et al. 2011 (TPAMI), table 1/3, BSDS500 test: published, not computed here.
GPB_OWT_UCM = {
    "sc_ods": 0.588, "sc_ois": 0.647, "pri_ods": 0.827, "pri_ois": 0.856, "vi_ods": 1.690, "vi_ois": 1.475,
    "bdry_ods_f": 0.726, "bdry_ois_f": 0.760, "bdry_ap": 0.727,
}  # fmt: skip


def _sc_pri_vi(sc, pri, vi) -> dict:
    """A row of Xia & Kulis 2017, Table 2: (ODS, OIS) of SC, PRI and VI; no boundary figures."""
    return dict(zip(COLUMNS[:6], (*sc, *pri, *vi), strict=True))


# Xia & Kulis 2017 (W-Net), Table 2, BSDS500 test; the classical rows are the paper's quotes of
# Taylor 2013 and DC-Seg. Published, not computed here (../shared/reference/wnet-paper.md).
TABLE2 = {
    "NCuts": _sc_pri_vi((0.45, 0.53), (0.78, 0.80), (2.23, 1.89)),
    "Canny-owt-ucm": _sc_pri_vi((0.49, 0.55), (0.79, 0.83), (2.19, 1.89)),
    "Felz-Hutt": _sc_pri_vi((0.52, 0.57), (0.80, 0.82), (2.21, 1.87)),
    "Mean Shift": _sc_pri_vi((0.54, 0.58), (0.79, 0.81), (1.85, 1.64)),
    "Taylor": _sc_pri_vi((0.56, 0.62), (0.81, 0.85), (1.78, 1.56)),
    "W-Net": _sc_pri_vi((0.57, 0.62), (0.81, 0.84), (1.76, 1.60)),
    "DC-Seg-full": _sc_pri_vi((0.59, 0.64), (0.82, 0.85), (1.68, 1.54)),
    "W-Net+ucm": _sc_pri_vi((0.59, 0.64), (0.82, 0.85), (1.67, 1.47)),
    "Human": _sc_pri_vi((0.72, 0.72), (0.88, 0.88), (1.17, 1.17)),
}
PUBLISHED = {  # method -> (label in the markdown table, values; a missing column is blank)
    "gPb-owt-ucm": ("gPb-owt-ucm (published, Arbelaez et al. 2011; not computed here)", GPB_OWT_UCM),
    **{
        f"{name} (paper)": (f"{name} (published, Xia & Kulis 2017 Table 2; not computed here)", values)
        for name, values in TABLE2.items()
    },
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
