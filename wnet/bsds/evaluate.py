"""Evaluate one image, a dict of in-memory predictions, or a folder of prediction files.

``evaluate_predictions`` is what training code calls (no files needed); ``evaluate`` reads a
folder and calls it. Images run in a process pool (one task per image); the tqdm bar advances as
each image finishes, in any order, so a stalled image shows as a bar that stops with N - k left.
Each image's seconds are kept: the summary lists the slowest (``slowest``) and all of them
(``image_seconds``, also in summary.json).
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wnet.bsds.boundary import BoundaryResult, boundary_image
from wnet.bsds.collect import collect_boundary, collect_region
from wnet.bsds.io import load_ground_truth, load_prediction, pair_files
from wnet.bsds.levels import as_prediction, level_values, resolve
from wnet.bsds.region import RegionResult, region_image
from wnet.bsds.report import plot_pr, write_boundary_files, write_region_files, write_summary

BENCHES = ("all", "region", "boundary")
N_SLOWEST = 5  # images listed in summary["slowest"]


@dataclass
class ImageResult:
    """Per-image counts; ``region``/``boundary`` is None when that benchmark was not run."""

    levels: np.ndarray
    region: RegionResult | None
    boundary: BoundaryResult | None
    label_0: bool = False  # a segs prediction with label 0: pixels the covering counts in no region


def evaluate_image(
    pred,
    gts,
    nthresh: int = 99,
    bench: str = "all",
    kind: str | None = None,
    max_dist: float = 0.0075,
    fast: bool = True,
    solver: str = "exact",
) -> ImageResult:
    """Benchmark one prediction against its annotators.

    Args:
        pred: a label map (h, w) (integers), a list / (n, h, w) array of label maps, a ucm2
            (2h+1, 2w+1) float map, a soft boundary map (h, w) float (boundary benchmark only),
            or a :class:`~wnet.bsds.levels.Prediction`.
        gts: ``load_ground_truth`` output, or the path of a ground-truth ``.mat``.
        nthresh: thresholds for ucm2/boundary maps (ignored for segs: their levels are 1..n).
        bench: ``"all"``, ``"region"`` or ``"boundary"``.
        kind: force ``"ucm2"``, ``"segs"`` or ``"pb"`` instead of guessing from dtype/shape.
        fast: False runs the literal per-level, per-annotator boundary loop (same numbers).
        solver: boundary matcher, ``"exact"`` or ``"csa"`` (:mod:`wnet.bsds.correspond`).
    Returns:
        :class:`ImageResult`.
    """
    if bench not in BENCHES:
        raise ValueError(f"bench must be one of {BENCHES}, got {bench!r}")
    if isinstance(gts, (str, Path)):
        gts = load_ground_truth(gts)
    if not gts:
        raise ValueError("evaluate_image: no ground-truth annotators")
    p = resolve(as_prediction(pred, kind=kind), gts[0][0].shape)
    if p.kind == "pb" and bench != "boundary":
        raise ValueError(
            f"{p.name}: a soft boundary map supports only bench='boundary' (the region benchmark "
            "needs a ucm2 or segmentations)"
        )
    levels = level_values(p, nthresh)
    reg = region_image(p, [g[0] for g in gts], levels, fast=fast) if bench in ("all", "region") else None
    bd = (
        boundary_image(p, [g[1] for g in gts], levels, max_dist, fast=fast, solver=solver)
        if bench in ("all", "boundary")
        else None
    )
    label_0 = p.kind == "segs" and any(bool((s == 0).any()) for s in p.data)
    return ImageResult(levels, reg, bd, label_0)


def _task(args):
    """One image: (id, ImageResult, seconds spent on it, reading included)."""
    start = time.perf_counter()
    image_id, pred, gt_path, nthresh, bench, kind, png_kind, max_dist, solver = args
    if isinstance(pred, Path):
        pred = load_prediction(pred, png_kind=png_kind)
        pred.name = f"{pred.name} (image {image_id})"
    elif not hasattr(pred, "kind"):
        pred = as_prediction(pred, kind=kind, name=f"prediction for image {image_id}")
    res = evaluate_image(pred, gt_path, nthresh, bench, kind, max_dist, solver=solver)
    return image_id, res, time.perf_counter() - start


def _run_tasks(tasks, workers: int) -> tuple[dict, dict]:
    """Run the images, the bar advancing as each finishes. Returns ({id: result}, {id: seconds})."""
    results: dict[str, ImageResult] = {}
    seconds: dict[str, float] = {}
    with tqdm(total=len(tasks), desc="BSDS benchmark", unit="img", leave=False) as bar:

        def done(k, r, sec):
            results[k], seconds[k] = r, sec
            bar.set_postfix_str(f"last {k} {sec:.1f}s", refresh=False)
            bar.update(1)

        if workers <= 1 or len(tasks) == 1:
            for t in tasks:
                done(*_task(t))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_task, t) for t in tasks]
                try:
                    for fut in as_completed(futures):
                        done(*fut.result())
                except BaseException:  # a failed image: do not wait for the queued ones
                    for f in futures:
                        f.cancel()
                    raise
    return results, seconds


def _summary(reg: dict | None, bd: dict | None) -> dict:
    s: dict = {}
    if reg is not None:
        s.update(
            sc_ods=reg["cover_ods"][1],
            sc_ods_threshold=reg["cover_ods"][0],
            sc_ois=reg["cover_ois"],
            sc_best=reg["cover_best"],
            pri_ods=reg["ri_ods"][1],
            pri_ods_threshold=reg["ri_ods"][0],
            pri_ois=reg["ri_ois"],
            vi_ods=reg["vi_ods"][1],
            vi_ods_threshold=reg["vi_ods"][0],
            vi_ois=reg["vi_ois"],
        )
    if bd is not None:
        t, r, p, f = bd["ods"]
        s.update(
            bdry_ods_f=f,
            bdry_ods_r=r,
            bdry_ods_p=p,
            bdry_ods_threshold=t,
            bdry_ois_r=bd["ois"][0],
            bdry_ois_p=bd["ois"][1],
            bdry_ois_f=bd["ois"][2],
            bdry_ap=bd["ap"],
        )
    return {k: float(v) for k, v in s.items()}


def _run(tasks, workers: int | None, out_dir, bench: str, label: str) -> dict:
    start = time.perf_counter()
    if workers is None:
        workers = min(len(tasks), os.cpu_count() or 1)
    results, seconds = _run_tasks(tasks, workers)
    ids = sorted(results)  # the official dir() order
    n_levels = {len(results[k].levels) for k in ids}
    if len(n_levels) != 1:
        raise ValueError(
            f"images have different numbers of levels {sorted(n_levels)}; the collect step needs one"
        )
    reg = collect_region([results[k].region for k in ids]) if bench in ("all", "region") else None
    bd = collect_boundary([results[k].boundary for k in ids]) if bench in ("all", "boundary") else None
    summary = _summary(reg, bd)
    summary.update(
        n_images=len(ids), n_levels=n_levels.pop(), bench=bench, seconds=time.perf_counter() - start
    )
    slow = sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0]))[:N_SLOWEST]
    summary["slowest"] = [(k, round(v, 3)) for k, v in slow]
    summary["segs_with_label_0"] = sum(results[k].label_0 for k in ids)
    if summary["segs_with_label_0"]:
        warnings.warn(
            f"{summary['segs_with_label_0']} of {len(ids)} label-map predictions use label 0, which the "
            "covering (SC) counts as no region, as the official regionprops does; number regions from 1 "
            "to score them all",
            stacklevel=3,
        )
    summary["image_seconds"] = {k: round(seconds[k], 3) for k in ids}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if reg is not None:
            write_region_files(out, reg)
        if bd is not None:
            write_boundary_files(out, bd)
            plot_pr(out, bd, label)
        write_summary(out, summary)
    summary["images"] = ids
    return summary


def evaluate_predictions(
    preds: dict,
    gt_dir,
    out_dir=None,
    nthresh: int = 99,
    workers: int | None = None,
    bench: str = "all",
    kind: str | None = None,
    max_dist: float = 0.0075,
    solver: str = "exact",
) -> dict:
    """Benchmark in-memory predictions ``{image id: pred}`` against ``gt_dir/<id>.mat``.

    Args:
        preds: image id -> anything :func:`evaluate_image` accepts.
        gt_dir: folder of official ground-truth ``.mat`` files.
        out_dir: if given, write the official text files, ``summary.json`` and ``pr_curve.png``.
        workers: processes (None: one per CPU; 0 or 1: in this process).
    Returns:
        summary dict: ``sc_ods, sc_ois, sc_best, pri_ods, pri_ois, vi_ods, vi_ois, bdry_ods_f,
        bdry_ois_f, bdry_ap`` (those of the benchmarks run), their thresholds, ``bdry_ods_r/p``,
        ``bdry_ois_r/p``, ``n_images``, ``n_levels``, ``seconds`` (wall, all images),
        ``slowest`` (the ``N_SLOWEST`` slowest images as (id, seconds), slowest first),
        ``image_seconds`` ({id: seconds}, reading included) and ``images`` (sorted ids).
    """
    if bench not in BENCHES:
        raise ValueError(f"bench must be one of {BENCHES}, got {bench!r}")
    if not preds:
        raise ValueError("evaluate_predictions: no predictions given")
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise FileNotFoundError(f"ground-truth folder {gt_dir} does not exist")
    tasks = []
    for image_id, pred in preds.items():
        gt = gt_dir / f"{image_id}.mat"
        if not gt.is_file():
            raise FileNotFoundError(
                f"prediction for image {image_id!r} has no ground truth: {gt} does not exist"
            )
        tasks.append((str(image_id), pred, gt, nthresh, bench, kind, "labels", max_dist, solver))
    return _run(tasks, workers, out_dir, bench, "prediction")


def evaluate(
    pred_dir,
    gt_dir,
    out_dir=None,
    nthresh: int = 99,
    workers: int | None = None,
    bench: str = "all",
    png_kind: str = "labels",
    max_dist: float = 0.0075,
    solver: str = "exact",
) -> dict:
    """Benchmark a folder of predictions (``.mat`` ucm2/segs, ``.png``, ``.npy``); see
    :func:`evaluate_predictions` for the result. Files are read inside the workers.
    """
    if bench not in BENCHES:
        raise ValueError(f"bench must be one of {BENCHES}, got {bench!r}")
    pairs = pair_files(pred_dir, gt_dir)
    n_gt = len(list(Path(gt_dir).glob("*.mat")))
    if n_gt > len(pairs):
        warnings.warn(
            f"{n_gt - len(pairs)} ground-truth images in {gt_dir} have no prediction and are skipped",
            stacklevel=2,
        )
    tasks = [(k, p, g, nthresh, bench, None, png_kind, max_dist, solver) for k, p, g in pairs]
    return _run(tasks, workers, out_dir, bench, Path(pred_dir).name)
