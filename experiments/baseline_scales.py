"""Why the in-harness mean shift / FH rows sit below the published ones: the scales swept.

Scores, with the region benchmark, the sweeps of ``wnet.baselines`` (10 levels of one parameter)
beside sweeps that reach coarse segmentations in every image: the same filtered image (mean
shift) or graph (FH) with the minimum region area growing from 20 px to a few thousand px,
the way EDISON's and FH's own ``min_size`` options merge small regions; and FH with its scale k
swept up to 100000 (``fh-wide``).

    python experiments/baseline_scales.py --data DIR/BSDS500 --max-images 50 --json scales.json

Every figure is deterministic. ``--json`` writes them, each sweep with the label its table row
carries; ``experiments/reproduce.py --only baseline_scales`` runs the command above, stores the
file as ``docs/results/baseline_scales.json`` and renders it into docs/postprocessing.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from wnet import baselines, bsds
from wnet.bsds.table import REGION_COLUMNS as METRICS
from wnet.datasets.images import bsds_files, read_image

MIN_AREAS = (20, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800)  # px, finest level first
MEANSHIFT_SR = 15  # colour bandwidth of the area sweep (the second level of the in-harness sweep)
FH_K = 100  # FH scale of the area sweep
FH_K_WIDE = (100, 250, 600, 1300, 3000, 6000, 12000, 25000, 50000, 100000)  # FH scales reaching a few regions
LABELS = {  # each sweep's table row: what it sweeps
    "meanshift": f"`meanshift` (in-harness: sr {baselines.MEANSHIFT_SR[0]}..{baselines.MEANSHIFT_SR[-1]})",
    "meanshift-area": f"mean shift sr {MEANSHIFT_SR}, min region area {MIN_AREAS[0]}..{MIN_AREAS[-1]} px (nested)",
    "fh": f"`fh` (in-harness: k {baselines.FH_K[0]}..{baselines.FH_K[-1]})",
    "fh-area": f"FH k = {FH_K}, min_size {MIN_AREAS[0]}..{MIN_AREAS[-1]} px",
    "fh-wide": f"FH k = {FH_K_WIDE[0]}..{FH_K_WIDE[-1]}",
}


def _absorb(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Regions under ``min_area`` px join their nearest larger region; the largest always stays."""
    sizes = np.bincount(labels.ravel())
    small = sizes < min_area
    small[sizes.argmax()] = False
    mask = small[labels]
    if not mask.any():
        return labels
    _, (iy, ix) = ndimage.distance_transform_edt(mask, return_indices=True)
    return np.unique(labels[iy, ix], return_inverse=True)[1].reshape(labels.shape).astype(np.int32)


def _levels(args) -> tuple[str, list[np.ndarray]]:
    name, path = args
    cv2.setNumThreads(1)
    rgb = np.ascontiguousarray((read_image(path, 3) * 255 + 0.5).astype(np.uint8))
    if name in baselines.LEVEL_BASELINES:
        return path.stem, baselines.run_baseline(name, rgb)
    if name == "meanshift-area":
        filtered = cv2.pyrMeanShiftFiltering(rgb, baselines.MEANSHIFT_SP, MEANSHIFT_SR, maxLevel=1)
        levels = [baselines.components(filtered, MEANSHIFT_SR / 2.0)]
        for a in MIN_AREAS:  # each level absorbs the previous one's small regions: nested levels
            levels.append(_absorb(levels[-1], a))
        return path.stem, levels[1:]
    if name == "fh-wide":
        return path.stem, baselines.fh_levels(rgb, FH_K_WIDE)
    if name == "fh-area":
        return path.stem, [
            cv2.ximgproc.segmentation.createGraphSegmentation(sigma=baselines.FH_SIGMA, k=FH_K, min_size=a)
            .processImage(rgb)
            .astype(np.int32)
            for a in MIN_AREAS
        ]
    raise ValueError(f"unknown sweep {name!r}")


def score_sweep(name: str, files, gt_dir, workers: int) -> tuple[dict, float]:
    """One sweep's levels on every image, scored with the region benchmark; its median region
    count at the finest and coarsest level; and the seconds it took (a timing)."""
    t0 = time.perf_counter()
    jobs = [(name, f) for f in files]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            preds = dict(pool.map(_levels, jobs))
    else:
        preds = dict(map(_levels, jobs))
    counts = np.median([[len(np.unique(s)) for s in segs] for segs in preds.values()], axis=0)
    # labels from 1: the covering counts label 0 as no region (the official regionprops reading)
    preds = {k: [seg + 1 for seg in segs] for k, segs in preds.items()}
    s = bsds.evaluate_predictions(preds, gt_dir, None, workers=workers, bench="region")
    scores = {c: round(float(s[c]), 6) for c in METRICS}  # 6 places: the table rounds once, to 3
    regions = {
        "levels": len(counts),
        "regions_finest": float(counts[0]),
        "regions_coarsest": float(counts[-1]),
    }
    return {"label": LABELS[name], **scores, **regions}, round(time.perf_counter() - t0, 1)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sweeps", default=",".join(LABELS))
    ap.add_argument("--json", default="", help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    unknown = [n for n in args.sweeps.split(",") if n not in LABELS]
    if unknown:
        ap.error(f"--sweeps: unknown sweep(s) {unknown}; known: {', '.join(LABELS)}")
    files, gts = bsds_files(args.data, args.split)
    if args.max_images:
        files, gts = files[: args.max_images], gts[: args.max_images]
    res = {"split": args.split, "images": len(files), "sweeps": {}, "seconds": {}}  # scores; timings
    print(
        "| sweep | SC ODS | SC OIS | PRI ODS | PRI OIS | VI ODS | VI OIS | median regions, finest -> coarsest |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.sweeps.split(","):
        r, res["seconds"][name] = score_sweep(name, files, gts[0].parent, args.workers)
        res["sweeps"][name] = r
        cells = " | ".join(f"{r[c]:.3f}" for c in METRICS)
        print(f"| {name} | {cells} | {r['regions_finest']:.0f} -> {r['regions_coarsest']:.0f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    try:
        main()
    except FileNotFoundError as e:  # a missing data folder or checkpoint: one line, no traceback
        sys.exit(f"baseline_scales: error: {e}")
