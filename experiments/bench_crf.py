"""Benchmark the two CRFs of wnet.postprocess.crf: argmax agreement and throughput.

    python experiments/bench_crf.py --images /path/to/BSDS500/images/val --max-images 20

Input soft maps: ``--probs DIR`` holds ``<image stem>.npy`` arrays (K, H, W) (e.g. saved W-Net
outputs); without it a stand-in is used: soft k-means on CIELAB colour, K clusters from
``cv2.kmeans`` (seeded), p_k(u) proportional to exp(-||Lab(u) - c_k||^2 / (2 T^2)) with
temperature T (Lab units). It measures

* pydensecrf in a plain loop (1 process) and in a process pool (``--workers``), images/s;
* the windowed torch CRF on CPU, and on CUDA when present, images/s (``--radius`` overrides
  CRFParams.radius);
* agreement of the argmax (% pixels) of the torch CRF with pydensecrf, and how many pixels each
  CRF changes relative to the input argmax;
* with ``--hierarchy``: seconds per image of ``wnet.postprocess.hierarchy.to_ucm2`` (merge and flat modes,
  default HierarchyParams) on the pydensecrf-refined maps, and the mean number of regions at
  ucm2 level 0 (the initial regions);
* with ``--bsds-gt DIR``: BSDS scores (``wnet.bsds.evaluate_predictions``, ``--bench``,
  ``--nthresh``) of the merge and flat ucm2 of the pydensecrf-refined maps and of the three
  classical baselines (``wnet.baselines``), with the baselines' seconds per image.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from wnet.datasets.images import list_images, read_image
from wnet.postprocess.crf import CRFParams, dense_crf_batch, torch_crf
from wnet.postprocess.hierarchy import HierarchyParams, flat_labels, to_ucm2


def stand_in_probs(rgb: np.ndarray, k: int, temperature: float, seed: int = 0) -> np.ndarray:
    """Soft k-means on Lab colour: (K, H, W) float32 soft maps (see the module docstring)."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)  # (N, 3)
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(lab, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)  # (K, 3)
    logits = -((lab[:, None] - centres[None]) ** 2).sum(-1) / (2 * temperature**2)  # (N, K)
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    return np.ascontiguousarray(p.T.reshape(k, *rgb.shape[:2]), dtype=np.float32)


def load(args) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    paths = list_images(args.images)  # a clear error when the folder is missing or empty
    paths = paths[: args.max_images] if args.max_images else paths
    names, images, probs = [], [], []
    for p in paths:
        rgb = (read_image(p, 3) * 255 + 0.5).astype(np.uint8)  # (H, W, 3)
        if args.probs:
            f = Path(args.probs) / f"{p.stem}.npy"
            if not f.is_file():
                raise FileNotFoundError(f"--probs: missing soft map {f} for image {p.name}")
            s = np.load(f).astype(np.float32)
            if s.ndim != 3 or s.shape[1:] != rgb.shape[:2]:
                raise ValueError(f"{f}: expected (K, {rgb.shape[0]}, {rgb.shape[1]}), got {s.shape}")
        else:
            s = stand_in_probs(rgb, args.k, args.temperature)
        names.append(p.stem)
        images.append(rgb)
        probs.append(s)
    return names, images, probs


def run_torch(probs, images, cfg, device: str) -> tuple[list[np.ndarray], float]:
    """Torch CRF one image at a time (BSDS sizes differ); returns outputs and seconds."""
    if device == "cuda":  # warm-up: CUDA context and kernels
        torch_crf(
            torch.from_numpy(probs[0][:, :32, :32].copy())[None].cuda(),
            torch.from_numpy(images[0][:32, :32].copy()).permute(2, 0, 1)[None].cuda(),
            cfg,
        )
        torch.cuda.synchronize()
    outs, t0 = [], time.perf_counter()
    for p, im in zip(probs, images, strict=True):
        q = torch_crf(
            torch.from_numpy(p)[None].to(device), torch.from_numpy(im).permute(2, 0, 1)[None].to(device), cfg
        )
        outs.append(q[0].cpu().numpy())
    if device == "cuda":
        torch.cuda.synchronize()
    return outs, time.perf_counter() - t0


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """% of all pixels whose argmax agrees."""
    same = sum(int((x.argmax(0) == y.argmax(0)).sum()) for x, y in zip(a, b, strict=True))
    return 100.0 * same / sum(x[0].size for x in a)


def score_bsds(args, names, images, refined) -> dict:
    """BSDS scores of the merge/flat hierarchies of ``refined`` and of the classical baselines."""
    from wnet.baselines import BASELINES, baseline_prediction
    from wnet.bsds import evaluate_predictions
    from wnet.bsds.table import COLUMNS as keys  # the results table's metrics

    methods = {
        f"crf+{mode}": lambda im, q, mode=mode: to_ucm2(q, im, HierarchyParams(mode=mode))
        for mode in ("merge", "flat")
    }
    methods.update({b: lambda im, q, b=b: baseline_prediction(b, im) for b in BASELINES})
    out = {}
    for method, fn in methods.items():
        t0 = time.perf_counter()
        preds = {n: fn(im, q) for n, im, q in zip(names, images, refined, strict=True)}
        seconds = (time.perf_counter() - t0) / len(names)
        summary = evaluate_predictions(preds, args.bsds_gt, nthresh=args.nthresh, workers=1, bench=args.bench)
        out[method] = {k: float(summary[k]) for k in keys if k in summary} | {"s_per_img": seconds}
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="folder of .jpg/.png images (e.g. BSDS500 images/val)")
    ap.add_argument("--probs", default="", help="folder of <stem>.npy soft maps (K, H, W); default: stand-in")
    ap.add_argument("--max-images", type=int, default=20, help="0: all")
    ap.add_argument("--k", type=int, default=8, help="stand-in: number of soft k-means classes")
    ap.add_argument("--temperature", type=float, default=10.0, help="stand-in: softness T (Lab units)")
    ap.add_argument("--workers", type=int, default=2, help="pydensecrf process pool size")
    ap.add_argument("--radius", type=float, default=None, help="torch CRF window radius (default: config)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--hierarchy", action="store_true", help="also time wnet.postprocess.hierarchy.to_ucm2")
    ap.add_argument("--bsds-gt", default="", help="ground-truth folder: also score ucm2s and baselines")
    ap.add_argument("--bench", default="region", help="wnet.bsds benchmark: region | boundary | all")
    ap.add_argument("--nthresh", type=int, default=25, help="wnet.bsds thresholds")
    ap.add_argument("--json", default="", help="write the figures to this JSON file")
    return ap.parse_args(argv)


def crf_figures(probs, images, params: CRFParams, workers: int) -> tuple[dict, list]:
    """Throughput of both CRFs and their agreement; returns the figures and the pydensecrf outputs."""
    n, res = len(probs), {}
    t0 = time.perf_counter()
    dense = dense_crf_batch(probs, images, params, workers=1)
    res["dense_loop_img_s"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    pooled = dense_crf_batch(probs, images, params, workers=workers)
    res["dense_pool_img_s"] = n / (time.perf_counter() - t0)
    res["pool_equals_loop"] = all(np.array_equal(a, b) for a, b in zip(dense, pooled, strict=True))
    tq, dt = run_torch(probs, images, params, "cpu")
    res["torch_cpu_img_s"] = n / dt
    if torch.cuda.is_available():
        tg, dt = run_torch(probs, images, params, "cuda")
        res["torch_cuda_img_s"] = n / dt
        res["cuda_vs_cpu_agree_pct"] = agreement(tg, tq)
    res["torch_vs_dense_agree_pct"] = agreement(tq, dense)
    res["dense_changed_pct"] = 100.0 - agreement(dense, probs)
    res["torch_changed_pct"] = 100.0 - agreement(tq, probs)
    return res, dense


def hierarchy_figures(dense, images) -> dict:
    """Seconds per image of both hierarchy modes, and the mean number of initial regions."""
    res = {}
    for mode in ("merge", "flat"):
        t0 = time.perf_counter()
        for p, im in zip(dense, images, strict=True):
            to_ucm2(p, im, HierarchyParams(mode=mode))
        res[f"ucm2_{mode}_s_per_img"] = (time.perf_counter() - t0) / len(dense)
    regions = [flat_labels(p, im, HierarchyParams()).max() + 1 for p, im in zip(dense, images, strict=True)]
    res["initial_regions_mean"] = float(np.mean(regions))
    return res


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    params = CRFParams() if args.radius is None else CRFParams(radius=args.radius)
    names, images, probs = load(args)
    res: dict = {"images": len(names), "k": int(probs[0].shape[0]), "radius": params.radius}
    res |= {"torch_threads": torch.get_num_threads(), "stand_in": not args.probs}
    figures, dense = crf_figures(probs, images, params, args.workers)
    res |= figures
    if args.hierarchy:
        res |= hierarchy_figures(dense, images)
    if args.bsds_gt:
        res["bsds"] = score_bsds(args, names, images, dense)

    print("| measure | value |\n|---|---|")
    for key, val in res.items():
        if key != "bsds":
            print(f"| {key} | {val:.3f} |" if isinstance(val, float) else f"| {key} | {val} |")
    for method, scores in res.get("bsds", {}).items():
        print(f"| {method} | " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
