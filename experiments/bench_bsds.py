"""Time the BSDS500 benchmark port on the 200 test images, and check the fast paths are exact.

    python experiments/bench_bsds.py [--gt ../shared/data/BSDS500] [--pred DIR] [--workers 2]
                                     [--naive-images 4] [--nthresh 99] [--out runs/bench_bsds]

Without ``--pred`` a deterministic ucm2 per image is generated (see ``synthetic_ucm2``). The
script reports wall time of the region and boundary benchmarks separately (process pool), then
re-runs a subset of images with the literal per-threshold, per-annotator loops (``fast=False``,
one process), extrapolates their time to all images, and checks the per-image counts are
identical. It also times single calls of the official C++ matcher (pyEdgeEval's CSA port) on
whole images, the cost unit of the naive official benchmark.
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
import scipy.io

ROOT = Path(__file__).resolve().parents[1]

from wnet.bsds import evaluate, evaluate_image, load_ground_truth, load_prediction, thresholds  # noqa: E402
from wnet.bsds.thin import thin  # noqa: E402


def synthetic_ucm2(image: np.ndarray, gts) -> np.ndarray:
    """A deterministic ultrametric contour map on the doubled grid (2h+1, 2w+1), values in [0, 1].

    Finest regions: OpenCV's graph-based segmentation (Felzenszwalb-Huttenlocher, sigma 0.5,
    k 300, min size 50). Strength of a boundary pixel pair: 0.7 x the fraction of annotators whose
    segmentation separates the two pixels, Gaussian-blurred (sigma 2), + 0.3 x the Sobel gradient
    magnitude of the grey image (normalised by its 99th percentile). A region adjacency edge gets
    its pairs' mean strength; the ucm value of a contour is the single-linkage merge height of its
    two regions (an ultrametric, like gPb-owt-ucm), with the border rows/columns copied inwards
    as in real ucm2 files.
    """
    from scipy.cluster.hierarchy import cophenet, linkage
    from scipy.spatial.distance import squareform

    h, w = gts[0][0].shape
    seg = cv2.ximgproc.segmentation.createGraphSegmentation(sigma=0.5, k=300, min_size=50).processImage(image)
    agree_v, agree_h = np.zeros((h - 1, w)), np.zeros((h, w - 1))
    for s, _ in gts:
        agree_v += (s[:-1] != s[1:]) / len(gts)
        agree_h += (s[:, :-1] != s[:, 1:]) / len(gts)
    agree_v, agree_h = cv2.GaussianBlur(agree_v, (0, 0), 2), cv2.GaussianBlur(agree_h, (0, 0), 2)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    grad = np.hypot(cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1))
    grad = np.clip(grad / (np.percentile(grad, 99) + 1e-9), 0, 1)
    sv = 0.7 * agree_v / max(agree_v.max(), 1e-9) + 0.3 * np.maximum(grad[:-1], grad[1:])
    sh = 0.7 * agree_h / max(agree_h.max(), 1e-9) + 0.3 * np.maximum(grad[:, :-1], grad[:, 1:])
    a = np.concatenate([seg[:-1].ravel(), seg[:, :-1].ravel()])
    b = np.concatenate([seg[1:].ravel(), seg[:, 1:].ravel()])
    st = np.concatenate([sv.ravel(), sh.ravel()])
    k = a != b
    n = int(seg.max()) + 1
    lo, hi = np.minimum(a[k], b[k]), np.maximum(a[k], b[k])
    tot = np.bincount(lo * n + hi, st[k], n * n)
    cnt = np.bincount(lo * n + hi, minlength=n * n)
    dist = np.full((n, n), 10.0)  # not adjacent: merged last
    adj = cnt > 0
    dist.ravel()[adj] = tot[adj] / cnt[adj]
    dist = np.minimum(dist, dist.T)
    np.fill_diagonal(dist, 0)
    height = squareform(cophenet(linkage(squareform(dist, checks=False), method="single")))  # (n, n)
    height = np.clip(height / max(height[height < 10].max(), 1e-9), 0, 1)
    ucm2 = np.zeros((2 * h + 1, 2 * w + 1))
    ucm2[2:-1:2, 1::2] = height[seg[:-1], seg[1:]]  # edgels between vertical neighbours
    ucm2[1::2, 2:-1:2] = height[seg[:, :-1], seg[:, 1:]]  # between horizontal neighbours
    ucm2[2:-1:2, 2:-1:2] = np.maximum.reduce(
        [ucm2[1:-2:2, 2:-1:2], ucm2[3::2, 2:-1:2], ucm2[2:-1:2, 1:-2:2], ucm2[2:-1:2, 3::2]]
    )  # junctions: the strongest of their four edgels
    ucm2[0], ucm2[-1], ucm2[:, 0], ucm2[:, -1] = ucm2[1], ucm2[-2], ucm2[:, 1], ucm2[:, -2]
    return ucm2


def make_synthetic(gt_dir: Path, img_dir: Path, out_dir: Path, ids: list[str]) -> Path:
    """Write ``synthetic_ucm2`` of every image to ``out_dir/<id>.mat`` (key ``ucm2``), once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in ids:
        path = out_dir / f"{i}.mat"
        if path.is_file():
            continue
        image = cv2.imread(str(img_dir / f"{i}.jpg"), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(
                f"{img_dir / i}.jpg is missing or unreadable (needed for the synthetic ucm2)"
            )
        ucm2 = synthetic_ucm2(image, load_ground_truth(gt_dir / f"{i}.mat"))
        scipy.io.savemat(str(path), {"ucm2": ucm2}, do_compression=True)
    return out_dir


def _naive(args):
    pred, gt_path, nthresh = args
    t0 = time.perf_counter()
    reg = evaluate_image(pred, gt_path, nthresh, bench="region", fast=False).region
    t1 = time.perf_counter()
    bd = evaluate_image(pred, gt_path, nthresh, bench="boundary", fast=False).boundary
    return reg, bd, t1 - t0, time.perf_counter() - t1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", default=str(ROOT.parent / "shared" / "data" / "BSDS500"), help="BSDS500 root")
    ap.add_argument("--split", default="test")
    ap.add_argument("--pred", default=None, help="folder of predictions (default: synthetic ucm2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nthresh", type=int, default=99)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    ap.add_argument("--naive-images", type=int, default=4, help="images re-run with the literal loops")
    ap.add_argument("--csa-calls", type=int, default=10, help="whole-image official-matcher calls to time")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_bsds"))
    args = ap.parse_args(argv)

    root = Path(args.gt)
    gt_dir, img_dir = root / "groundTruth" / args.split, root / "images" / args.split
    if not gt_dir.is_dir():
        sys.exit(
            f"bench_bsds: ground truth {gt_dir} not found; pass --gt /path/to/BSDS500 (with groundTruth/{args.split})"
        )
    ids = sorted(p.stem for p in gt_dir.glob("*.mat"))[: args.limit or None]
    if args.pred:
        pred_dir = Path(args.pred)
    else:
        t0 = time.perf_counter()
        pred_dir = make_synthetic(gt_dir, img_dir, Path(args.out) / "synthetic_ucm2", ids)
        print(f"synthetic ucm2 in {pred_dir} ({time.perf_counter() - t0:.1f}s)")
    pred_files = {p.stem: p for p in pred_dir.iterdir() if p.suffix in (".mat", ".npy", ".png")}
    missing = [i for i in ids if i not in pred_files]
    if missing:
        sys.exit(f"bench_bsds: {len(missing)} images have no prediction in {pred_dir} (e.g. {missing[0]})")
    if args.limit:  # evaluate() reads the whole folder: give it only the chosen images
        sub_dir = Path(args.out) / "pred_subset"
        sub_dir.mkdir(parents=True, exist_ok=True)
        for i in ids:
            link = sub_dir / pred_files[i].name
            if not link.exists():
                link.symlink_to(pred_files[i].resolve())
        pred_dir = sub_dir
    print(f"{len(ids)} images, {args.nthresh} thresholds, {args.workers} workers")

    res = {"images": len(ids), "nthresh": args.nthresh, "workers": args.workers, "pred_dir": str(pred_dir)}
    for bench in ("region", "boundary"):
        t0 = time.perf_counter()
        s = evaluate(pred_dir, gt_dir, Path(args.out) / bench, args.nthresh, args.workers, bench)
        res[f"{bench}_seconds"] = time.perf_counter() - t0
        res[f"{bench}_summary"] = {k: v for k, v in s.items() if k != "images"}
        print(f"{bench}: {res[f'{bench}_seconds']:.1f}s wall  {json.dumps(res[f'{bench}_summary'])}")
    preds = {i: load_prediction(pred_files[i]) for i in ids[: max(args.naive_images, 1)]}

    # literal loops on a subset, one process, compared count by count with the fast path
    sub = ids[: args.naive_images]
    if sub:
        tasks = [(preds[i], gt_dir / f"{i}.mat", args.nthresh) for i in sub]
        with ProcessPoolExecutor(max_workers=1) as pool:
            naive = list(pool.map(_naive, tasks))
        t_reg = sum(n[2] for n in naive) / len(sub)
        t_bd = sum(n[3] for n in naive) / len(sub)
        same = True
        t_fast = {"region": 0.0, "boundary": 0.0}
        for i, (reg, bd, _, _) in zip(sub, naive, strict=True):
            for bench, slow in (("region", reg), ("boundary", bd)):
                t = time.perf_counter()
                fast = getattr(
                    evaluate_image(preds[i], gt_dir / f"{i}.mat", args.nthresh, bench=bench), bench
                )
                t_fast[bench] += (time.perf_counter() - t) / len(sub)
                for k, v in vars(slow).items():
                    if isinstance(v, np.ndarray) and not np.allclose(v, getattr(fast, k), rtol=0, atol=1e-9):
                        same = False
                        print(
                            f"MISMATCH image {i} {bench} {k}: max diff {np.abs(v - getattr(fast, k)).max()}"
                        )
        res.update(
            naive_images=len(sub),
            naive_identical=same,
            naive_region_s_per_image=t_reg,
            naive_boundary_s_per_image=t_bd,
            fast_region_s_per_image_1proc=t_fast["region"],
            fast_boundary_s_per_image_1proc=t_fast["boundary"],
            naive_region_extrapolated_s=t_reg * len(ids),
            naive_boundary_extrapolated_s=t_bd * len(ids),
        )
        print(
            f"literal loops, 1 process, {len(sub)} images: region {t_reg:.2f}s/img, boundary {t_bd:.2f}s/img "
            f"(fast path 1 process: {t_fast['region']:.2f}, {t_fast['boundary']:.2f}); extrapolated to "
            f"{len(ids)} images: region {t_reg * len(ids):.0f}s, boundary {t_bd * len(ids):.0f}s; identical: {same}"
        )

    # the official C++ matcher on whole images: the naive official benchmark's unit of work
    if args.csa_calls:
        from pyEdgeEval._lib import correspond_pixels

        i = ids[0]
        gts = load_ground_truth(gt_dir / f"{i}.mat")
        p = preds[i]
        pb = p.data[2::2, 2::2] if p.kind == "ucm2" else (p.data if p.kind == "pb" else None)
        if pb is not None:
            times = []
            for k, t in enumerate(thresholds(args.csa_calls)):
                bm = thin(pb >= t).astype(np.float64)
                t0 = time.perf_counter()
                correspond_pixels(bm, gts[k % len(gts)][1].astype(np.float64), 0.0075)
                times.append(time.perf_counter() - t0)
            n_calls = (
                len(ids)
                * args.nthresh
                * np.mean([len(load_ground_truth(gt_dir / f"{j}.mat")) for j in sub or ids[:1]])
            )
            res.update(
                csa_call_s=float(np.mean(times)), csa_naive_extrapolated_s=float(np.mean(times) * n_calls)
            )
            print(
                f"official CSA matcher, whole image: {np.mean(times):.3f}s/call; x{n_calls:.0f} calls = {np.mean(times) * n_calls:.0f}s"
            )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
