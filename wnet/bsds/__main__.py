"""Command line: ``python -m wnet.bsds PRED_DIR GT_DIR --out OUT [--nthresh 99] [--workers N]``.

Prints the JSON summary on stdout (without the per-image seconds, which summary.json keeps) and
the slowest images with their seconds on stderr. A missing folder or a prediction or ground-truth
file that cannot be scored is one line ``error: <file>: ...`` and exit code 3 (``--debug``: the
traceback instead), as for ``experiments/run.py``.
"""

from __future__ import annotations

import argparse
import json
import sys

from wnet.bsds.evaluate import BENCHES, evaluate
from wnet.bsds.levels import PredictionError

BAD_INPUT = 3  # the exit code of an unusable input, as wnet.tasks.errors.InputError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m wnet.bsds",
        description="BSDS500 benchmark (official port): SC/PRI/VI at ODS/OIS and boundary P/R/F (ODS/OIS/AP).",
    )
    ap.add_argument("pred_dir", help="folder of predictions: <id>.mat (ucm2 or segs), <id>.png or <id>.npy")
    ap.add_argument("gt_dir", help="folder of official ground truth <id>.mat (e.g. BSDS500/groundTruth/test)")
    ap.add_argument("--out", default=None, help="write eval_*.txt, summary.json and pr_curve.png here")
    ap.add_argument(
        "--nthresh", type=int, default=99, help="thresholds for ucm2 / boundary maps (default 99)"
    )
    ap.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU)")
    ap.add_argument("--bench", choices=BENCHES, default="all")
    ap.add_argument(
        "--png",
        choices=("labels", "boundary"),
        default="labels",
        help="read .png files as label maps (default) or soft boundary maps (/255, the official demo's png/)",
    )
    ap.add_argument(
        "--solver",
        choices=("exact", "csa"),
        default="exact",
        help="boundary matcher: exact optimum (default) or the official C++ CSA via pyEdgeEval (slower)",
    )
    ap.add_argument("--debug", action="store_true", help="show the traceback of a bad input file")
    args = ap.parse_args(argv)
    try:
        summary = evaluate(
            args.pred_dir, args.gt_dir, args.out, args.nthresh, args.workers, args.bench, args.png,
            solver=args.solver,
        )  # fmt: skip
    except (PredictionError, FileNotFoundError) as e:  # messages name the file or folder
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return BAD_INPUT
    summary.pop("images", None)
    summary.pop("image_seconds", None)
    json.dump(summary, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    slow = ", ".join(f"{k} {s:.1f}s" for k, s in summary["slowest"])
    print(f"{summary['n_images']} images in {summary['seconds']:.1f}s; slowest: {slow}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
