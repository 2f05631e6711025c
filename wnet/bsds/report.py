"""Output files: the official benchmark's text files, a JSON summary and a PR-curve plot.

The text files have the official names and ``fprintf`` formats (``%10g`` / ``%10d``), so they can be
compared line by line with published ``eval_*.txt`` files:

====================  ==========================================================
eval_bdry.txt         ODS T R P F, OIS R P F, AP
eval_bdry_img.txt     per image: i, T, R, P, F (interpolated best)
eval_bdry_thr.txt     per level: T, R, P, F (dataset totals)
eval_cover.txt        ODS T, ODS SC, OIS SC, best SC
eval_cover_img.txt    per image: i, T, SC, reverse covering at that T
eval_cover_th.txt     per level: T, SC
eval_RI_VOI.txt       PRI T, PRI ODS, PRI OIS, VI T, VI ODS, VI OIS
eval_RI_VOI_thr.txt   per level: T, PRI, VI
====================  ==========================================================
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _g(x) -> str:
    return f"{float(x):10g}"


def _write(path: Path, rows, int_first: bool = False) -> None:
    lines = []
    for row in rows:
        cells = [f"{int(row[0]):10d}" if int_first else _g(row[0])] + [_g(v) for v in row[1:]]
        lines.append(" ".join(cells) + "\n")
    path.write_text("".join(lines))


def write_boundary_files(out_dir: str | Path, bd: dict) -> None:
    """Write eval_bdry*.txt from :func:`wnet.bsds.collect.collect_boundary`'s dict."""
    out = Path(out_dir)
    _write(out / "eval_bdry_img.txt", bd["img"], int_first=True)
    _write(out / "eval_bdry_thr.txt", np.stack([bd["thresh"], bd["R"], bd["P"], bd["F"]], 1))
    _write(out / "eval_bdry.txt", [[*bd["ods"], *bd["ois"], bd["ap"]]])


def write_region_files(out_dir: str | Path, reg: dict) -> None:
    """Write eval_cover*.txt and eval_RI_VOI*.txt from :func:`collect_region`'s dict."""
    out = Path(out_dir)
    _write(out / "eval_cover_img.txt", reg["img"], int_first=True)
    _write(out / "eval_cover_th.txt", np.stack([reg["thresh"], reg["cover"]], 1))
    _write(out / "eval_cover.txt", [[*reg["cover_ods"], reg["cover_ois"], reg["cover_best"]]])
    _write(out / "eval_RI_VOI_thr.txt", np.stack([reg["thresh"], reg["ri"], reg["vi"]], 1))
    _write(out / "eval_RI_VOI.txt", [[*reg["ri_ods"], reg["ri_ois"], *reg["vi_ods"], reg["vi_ois"]]])


def write_summary(out_dir: str | Path, summary: dict) -> Path:
    """Write summary.json (floats, ints, strings and lists only)."""
    path = Path(out_dir) / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path


def plot_pr_curves(path: str | Path, curves: dict, title: str = "BSDS boundary benchmark") -> Path:
    """Precision/recall curves of several methods on one plot, with iso-F contours.

    Args:
        path: the PNG to write.
        curves: ``{label: (recall (T,), precision (T,), ods_f[, (ods_r, ods_p)])}``; a
            single-level method (T = 1) is drawn as a point, the optional ODS point as a dot.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, no display needed

    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    r = np.linspace(0.01, 1, 200)
    for f in np.arange(0.1, 1.0, 0.1):
        p = f * r / (2 * r - f)  # iso-F line: 2PR/(P+R) = f
        ok = (p > 0) & (p <= 1)
        ax.plot(r[ok], p[ok], color="0.85", lw=0.8)
        k = np.flatnonzero(ok)
        if k.size:
            ax.text(r[k[-1]], p[k[-1]], f"{f:.1f}", color="0.6", fontsize=7, va="bottom")
    for label, (rec, prec, ods_f, *ods) in curves.items():
        (line,) = ax.plot(
            rec, prec, "o-" if len(rec) == 1 else "-", lw=1.5, ms=4, label=f"[F={ods_f:.3f}] {label}"
        )
        if ods:
            ax.plot([ods[0][0]], [ods[0][1]], "o", color=line.get_color())
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Recall", ylabel="Precision", title=title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return Path(path)


def plot_pr(out_dir: str | Path, bd: dict, label: str = "prediction") -> Path:
    """Precision/recall curve of one benchmark run, saved as ``<out_dir>/pr_curve.png``."""
    curve = (bd["R"], bd["P"], bd["ods"][3], (bd["ods"][1], bd["ods"][2]))
    return plot_pr_curves(Path(out_dir) / "pr_curve.png", {label: curve})
