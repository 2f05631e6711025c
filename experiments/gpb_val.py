"""Fidelity of gPb-owt-ucm computed here against the official BSDS500 val hierarchies.

    python experiments/gpb_val.py --data DIR/BSDS500 --out runs/gpb_val --workers 2
    python experiments/gpb_val.py ... --skip-compute     # score what runs/gpb_val/ucm2 holds
    python experiments/gpb_val.py ... --out runs/gpb_val_image --textons image   # each image's own textons
    python experiments/gpb_val.py ... --out runs/gpb_val_lines --watershed lines \
        --from-gpb runs/gpb_val/ucm2     # another OWT-UCM layout on the saved gPb (seconds per image)

1. ``python -m wnet.postprocess.gpb <data>/images/val <out>/ucm2`` (resumable: rerunning this
   script continues where it stopped), with the per-image timings.
2. The project's benchmark (``wnet.bsds.evaluate``, what ``python -m wnet.bsds`` runs; 99
   thresholds) on ``<out>/ucm2`` and on the official ``<data>/ucm2_gpb/val``, both against
   ``<data>/groundTruth/val``, into ``<out>/bench/{ours,official}``.
3. Writes ``--results`` (default docs/results/gpb_val.json): both rows, their differences, the
   tolerances of the fidelity check (0.01 on SC, PRI, boundary F at ODS and OIS and on AP; 0.05
   on VI) with pass / fail, and the per-image CPU and wall time distribution with the median
   of every stage. Only val images are read; no test image is used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.io

from wnet.bsds.evaluate import evaluate
from wnet.bsds.table import COLUMNS
from wnet.datasets.images import list_images
from wnet.postprocess.gpb import GPbParams
from wnet.postprocess.gpb.batch import run

METRICS = tuple(COLUMNS)  # the benchmark's summary keys, in table order
TOLERANCE = {m: (0.05 if m.startswith("vi_") else 0.01) for m in METRICS}


def score(pred_dir: Path, gt_dir: Path, out: Path, nthresh: int, workers: int) -> dict:
    """The benchmark summary of one folder (cached in ``out/summary.json``)."""
    cached = out / "summary.json"
    if cached.is_file() and cached.stat().st_mtime > max(p.stat().st_mtime for p in pred_dir.glob("*.mat")):
        return json.loads(cached.read_text())
    out.mkdir(parents=True, exist_ok=True)
    return evaluate(pred_dir, gt_dir, out, nthresh, workers)


def official_folder(data: Path, images: list[Path], out: Path) -> Path:
    """The official val hierarchies of ``images``: their folder, or links to a subset's files."""
    folder = data / "ucm2_gpb" / "val"
    if len(images) == len(list_images(data / "images" / "val")):
        return folder
    subset = out / "official_ucm2"
    subset.mkdir(parents=True, exist_ok=True)
    for p in images:
        link = subset / f"{p.stem}.mat"
        if not link.exists():
            link.symlink_to((folder / f"{p.stem}.mat").resolve())
    return subset


def compare(ours: dict, official: dict) -> dict:
    """Both rows, differences and the pass / fail of each metric."""
    rows = {"ours": {m: ours[m] for m in METRICS}, "official": {m: official[m] for m in METRICS}}
    diff = {m: ours[m] - official[m] for m in METRICS}
    ok = {m: abs(diff[m]) <= TOLERANCE[m] for m in METRICS}
    return {
        "rows": rows,
        "difference": diff,
        "tolerance": TOLERANCE,
        "within": ok,
        "all_within": all(ok.values()),
    }


def ucm2_from_saved(images: list[Path], gpb_dir: Path, out: Path, watershed: str) -> None:
    """Recompute ``<out>/<id>.mat`` from the ``<id>.gpb.npz`` a ``--save-gpb`` run kept."""
    from wnet.postprocess.gpb import gpb_ucm2

    out.mkdir(parents=True, exist_ok=True)
    for p in images:
        if not (out / f"{p.stem}.mat").is_file():
            orient = np.load(gpb_dir / f"{p.stem}.gpb.npz")["orient"].astype(np.float64)
            scipy.io.savemat(
                out / f"{p.stem}.mat", {"ucm2": gpb_ucm2(orient, watershed)}, do_compression=True
            )


def machine() -> dict:
    """CPU model and cores, and the load average: the wall times depend on what else ran."""
    model = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = [
            ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines() if ln.startswith("model name")
        ]
        model = names[0] if names else model
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": model, "cores": os.cpu_count(), "load_average_1_5_15min_at_end": load}


def git_head() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "wnet", "experiments"], capture_output=True, text=True
    )
    return r.stdout.strip() + (" with local changes" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the BSDS500 folder (images/, groundTruth/, ucm2_gpb/)")
    ap.add_argument("--out", default="runs/gpb_val")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nthresh", type=int, default=99)
    ap.add_argument("--skip-compute", action="store_true", help="only score the ucm2 already computed")
    ap.add_argument("--watershed", choices=("cracks", "lines"), default="cracks", help="OWT-UCM layout")
    ap.add_argument(
        "--textons", default="bsds500-train", help="bsds500-train (shipped), image (per image) or an .npz"
    )
    ap.add_argument(
        "--eigensolver", choices=("multigrid", "arpack"), default="multigrid", help="sPb's eigensolver"
    )
    ap.add_argument("--limit", type=int, default=None, help="only the first N val images (name order)")
    ap.add_argument(
        "--from-gpb", default=None, help="recompute only the ucm2 from this folder's <id>.gpb.npz"
    )
    ap.add_argument("--results", default="docs/results/gpb_val.json")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    try:
        images = list_images(data / "images" / "val")[: args.limit]
    except FileNotFoundError as e:  # one line naming the folder, not a traceback
        raise SystemExit(f"gpb_val: error: {e} (give --data the BSDS500 folder)") from None
    start = time.time()
    if args.from_gpb:
        ucm2_from_saved(images, Path(args.from_gpb), out / "ucm2", args.watershed)
        timing = {"note": f"ucm2 recomputed from {args.from_gpb}; gPb timings are that run's"}
    elif args.skip_compute:
        timing = json.loads((out / "ucm2" / "timings.json").read_text())
    else:
        params = GPbParams(textons=args.textons, eigensolver=args.eigensolver)
        timing = run(
            images, out / "ucm2", args.workers, save_gpb=True, watershed=args.watershed, params=params
        )
    gt = data / "groundTruth" / "val"
    ours = score(out / "ucm2", gt, out / "bench" / "ours", args.nthresh, args.workers)
    official = score(
        official_folder(data, images, out), gt, out / "bench" / "official", args.nthresh, args.workers
    )
    result = {
        "what": "gPb-owt-ucm computed by wnet.postprocess.gpb vs the official BSDS500 val ucm2, same benchmark",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "n_images": len(images), "n_images_scored": ours["n_images"], "nthresh": args.nthresh,
        "watershed": args.watershed,
        "textons": args.textons,
        "eigensolver": args.eigensolver,
        **compare(ours, official),
        "timing": timing,
        "machine": machine(),
        "commit": git_head(),
        "seconds": round(time.time() - start, 1),
    }  # fmt: skip
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("rows", "difference", "all_within")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
