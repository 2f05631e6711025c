"""Time the BSDS500 benchmark on real hierarchies, against the matcher it replaced, and check exactness.

    python experiments/bench_bsds.py                          # gPb-owt-ucm ucm2 of the 100 val images
    python experiments/bench_bsds.py --pred DIR --split test  # any folder of ucm2 / segs / png files
    python experiments/bench_bsds.py --limit 20 --json out.json

Default input: ``<--data>/ucm2_gpb/<split>``, the official gPb-owt-ucm hierarchies (their fine
levels are dense oversegmentations, the input that stalled the old matcher). Three measurements:

1. the whole benchmark (region and boundary, ``--nthresh`` thresholds, ``--workers`` processes):
   wall time, and the per-image seconds (median, 95th percentile, max, the slowest images);
2. the simple baseline, in the same run: the boundary benchmark of the ``--baseline-images``
   slowest images (or of ``--baseline-ids``) with the matcher before the component split (``solver="legacy"``: one sparse
   LAPJVsp call per map), each in its own process with a ``--baseline-timeout`` limit; printed
   as the ratio of its time to the default matcher's on the same images (a lower bound when the
   limit is reached);
3. exactness: ``--literal-images`` images re-run with the literal per-threshold, per-annotator
   loops (``fast=False``) and compared count by count with the fast path.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

from wnet.bsds import evaluate, evaluate_image, load_ground_truth, load_prediction


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data",
        default=os.path.join(os.environ["WNET_DATA"], "BSDS500") if os.environ.get("WNET_DATA") else "",
        help="BSDS500 root (groundTruth/<split>); default: $WNET_DATA/BSDS500",
    )
    ap.add_argument("--split", default="val")
    ap.add_argument("--pred", default=None, help="prediction folder (default: <data>/ucm2_gpb/<split>)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nthresh", type=int, default=99)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument(
        "--baseline-images", type=int, default=3, help="slowest images re-run with the old matcher"
    )
    ap.add_argument(
        "--baseline-ids",
        default="",
        help="comma-separated image ids for the old matcher (default: the slowest)",
    )
    ap.add_argument(
        "--baseline-timeout", type=float, default=120.0, help="seconds per image for the old matcher"
    )
    ap.add_argument("--literal-images", type=int, default=2, help="images re-run with the literal loops")
    ap.add_argument("--out", default="runs/bench_bsds", help="benchmark output folder")
    ap.add_argument("--json", default="", help="write the figures to this file")
    return ap.parse_args(argv)


def input_folders(args) -> tuple[Path, Path, list[str]]:
    """(prediction folder, ground-truth folder, image ids); a subset folder of links for --limit."""
    if not args.data:
        sys.exit("bench_bsds: no data folder: pass --data BSDS500_ROOT or set WNET_DATA")
    gt_dir = Path(args.data) / "groundTruth" / args.split
    pred_dir = Path(args.pred) if args.pred else Path(args.data) / "ucm2_gpb" / args.split
    for d, what in ((gt_dir, "ground truth"), (pred_dir, "predictions")):
        if not d.is_dir():
            sys.exit(f"bench_bsds: {what} folder {d} not found (pass --data BSDS500_ROOT or --pred DIR)")
    files = sorted(p for p in pred_dir.iterdir() if p.suffix in (".mat", ".png", ".npy"))
    files = files[: args.limit or None]
    if args.limit:  # evaluate() reads a whole folder: give it only the chosen images
        sub = Path(args.out) / "pred_subset"
        sub.mkdir(parents=True, exist_ok=True)
        for p in files:
            if not (sub / p.name).exists():
                (sub / p.name).symlink_to(p.resolve())
        pred_dir = sub
    return pred_dir, gt_dir, [p.stem for p in files]


def distribution(seconds: dict[str, float]) -> dict:
    s = np.array(list(seconds.values()))
    return {"median": float(np.median(s)), "p95": float(np.percentile(s, 95)), "max": float(s.max())}


def _boundary_seconds(pred_path, gt_path, nthresh, solver, queue) -> None:
    t0 = time.perf_counter()
    evaluate_image(load_prediction(pred_path), load_ground_truth(gt_path), nthresh, "boundary", solver=solver)
    queue.put(time.perf_counter() - t0)


def timed_boundary(pred_path: Path, gt_path: Path, nthresh: int, solver: str, timeout: float) -> float | None:
    """Seconds of one image's boundary benchmark in a fresh process; None past ``timeout``."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_boundary_seconds, args=(pred_path, gt_path, nthresh, solver, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None
    return queue.get() if proc.exitcode == 0 else float("nan")


def baseline_ratio(args, pred_dir: Path, gt_dir: Path, slowest: list[str]) -> dict:
    """The old matcher against the default one on the same images, one process each."""
    rows = []
    for i in slowest:
        pred = next(pred_dir.glob(f"{i}.*"))
        new = timed_boundary(pred, gt_dir / f"{i}.mat", args.nthresh, "exact", args.baseline_timeout)
        old = timed_boundary(pred, gt_dir / f"{i}.mat", args.nthresh, "legacy", args.baseline_timeout)
        rows.append({"image": i, "exact_s": new, "legacy_s": old})
        shown = f"{old:.1f}s" if old is not None else f"> {args.baseline_timeout:.0f}s (stopped)"
        print(f"  {i}: default matcher {new:.1f}s, old matcher {shown}")
    old_total = sum(r["legacy_s"] if r["legacy_s"] is not None else args.baseline_timeout for r in rows)
    new_total = sum(r["exact_s"] for r in rows)
    capped = any(r["legacy_s"] is None for r in rows)
    ratio = old_total / new_total
    print(f"old / default matcher on these images: {'>= ' if capped else ''}{ratio:.1f}x")
    return {"images": rows, "ratio": ratio, "ratio_is_lower_bound": capped}


def literal_check(args, pred_dir: Path, gt_dir: Path, ids: list[str]) -> bool:
    """The literal loops (fast=False) and the fast path give identical per-image counts (boundary:
    integers, exactly; region: float sums, to 1e-12 relative, as they add in another order)."""
    same = True
    for i in ids:
        pred, gts = load_prediction(next(pred_dir.glob(f"{i}.*"))), load_ground_truth(gt_dir / f"{i}.mat")
        for bench in ("region", "boundary"):
            slow = getattr(evaluate_image(pred, gts, args.nthresh, bench=bench, fast=False), bench)
            fast = getattr(evaluate_image(pred, gts, args.nthresh, bench=bench), bench)
            for k, v in vars(slow).items():
                rtol = 0 if bench == "boundary" else 1e-12
                if isinstance(v, np.ndarray) and not np.allclose(v, getattr(fast, k), rtol=rtol, atol=0):
                    same = False
                    print(f"MISMATCH image {i} {bench} {k}: max diff {np.abs(v - getattr(fast, k)).max()}")
    print(f"literal loops vs fast path on {len(ids)} images: {'identical' if same else 'DIFFERENT'}")
    return same


def main(argv=None) -> dict:
    args = parse_args(argv)
    pred_dir, gt_dir, ids = input_folders(args)
    print(f"{pred_dir}: {len(ids)} images, {args.nthresh} thresholds, {args.workers} workers")
    t0 = time.perf_counter()
    s = evaluate(pred_dir, gt_dir, Path(args.out), args.nthresh, args.workers, "all")
    wall = time.perf_counter() - t0
    dist = distribution(s["image_seconds"])
    print(
        f"whole benchmark (region + boundary): {wall:.1f}s wall; per image median {dist['median']:.2f}s, "
        f"p95 {dist['p95']:.2f}s, max {dist['max']:.2f}s; slowest: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in s["slowest"])
    )
    scores = {k: s[k] for k in ("sc_ods", "pri_ods", "vi_ods", "bdry_ods_f", "bdry_ois_f", "bdry_ap")}
    print("scores: " + " ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    res = {"pred_dir": str(pred_dir), "images": len(ids), "nthresh": args.nthresh, "workers": args.workers}
    res.update(wall_s=wall, per_image=dist, slowest=s["slowest"], scores=scores)
    chosen = (
        args.baseline_ids.split(",")
        if args.baseline_ids
        else [k for k, _ in s["slowest"][: args.baseline_images]]
    )
    if chosen:
        res["baseline"] = baseline_ratio(args, pred_dir, gt_dir, chosen)
    if args.literal_images:
        res["literal_identical"] = literal_check(args, pred_dir, gt_dir, ids[: args.literal_images])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
