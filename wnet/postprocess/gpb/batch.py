"""gPb-owt-ucm of a folder of images, cached per image and resumable (the engine of the CLI).

:func:`run` writes ``<out>/<id>.mat`` (key ``ucm2``, (2H+1, 2W+1), the layout ``python -m
wnet.bsds`` reads), ``<out>/<id>.gpb.npz`` with ``save_gpb`` (the oriented gPb and mPb, float32),
one line per image in ``<out>/timings.jsonl`` (CPU and wall seconds of each stage,
:mod:`.timing`) and ``<out>/timings.json`` (the summary over every image done so far: median,
p90 and max of the total CPU and wall seconds, median of each stage). An image whose ``.mat``
exists is skipped, so an interrupted run resumes; files are written under a temporary name and
renamed, so a killed run never leaves a partial ``.mat``. Images run in ``workers`` spawned
processes, each with one BLAS / OpenMP / OpenCV thread.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _one_thread() -> None:
    import cv2

    cv2.setNumThreads(1)


def process_image(path: str, out_dir: str, save_gpb: bool, watershed: str = "cracks", params=None) -> dict:
    """gPb-owt-ucm of one image into ``out_dir``; returns its stage timings (seconds).

    ``params``: a :class:`~wnet.postprocess.gpb.GPbParams` (None: the defaults)."""
    import scipy.io

    from wnet.postprocess.gpb import gpb, gpb_ucm2
    from wnet.postprocess.gpb.timing import timed

    _one_thread()
    stem, out = Path(path).stem, Path(out_dir)
    start, start_cpu = time.perf_counter(), time.process_time()
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)  # 8-bit BGR, grey replicated (no torch import here)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    image = np.ascontiguousarray(image[..., ::-1])
    g = gpb(image, params)
    timings = dict(g.timings)
    with timed(timings, "owt_ucm"):
        ucm2 = gpb_ucm2(g.orient, watershed)
    if save_gpb:
        tmp = out / f".{stem}.gpb.tmp.npz"
        np.savez_compressed(tmp, orient=g.orient.astype(np.float32), mpb=g.mpb.astype(np.float32))
        os.replace(tmp, out / f"{stem}.gpb.npz")
    tmp = out / f".{stem}.tmp.mat"
    scipy.io.savemat(tmp, {"ucm2": ucm2}, do_compression=True)
    os.replace(tmp, out / f"{stem}.mat")
    timings["total"] = time.process_time() - start_cpu
    timings["total_wall"] = time.perf_counter() - start
    return {"image": stem, **{k: round(v, 3) for k, v in timings.items()}}


def summarize(records: list[dict]) -> dict:
    """Median / p90 / max of the total CPU and wall seconds, and the median of every stage."""
    if not records:
        return {"n_images": 0}

    def dist(key):
        a = np.array([r[key] for r in records])
        return {"median": float(np.median(a)), "p90": float(np.quantile(a, 0.9)), "max": float(a.max())}

    stages = sorted({k for r in records for k in r} - {"image", "total", "total_wall"})
    return {
        "n_images": len(records),
        "total_cpu_seconds": dist("total"),
        "total_wall_seconds": dist("total_wall"),
        "stage_median_seconds": {k: float(np.median([r.get(k, 0.0) for r in records])) for k in stages},
    }


def run(
    images: list[Path],
    out_dir: Path,
    workers: int = 1,
    save_gpb: bool = False,
    watershed: str = "cracks",
    params=None,
) -> dict:
    """Compute every missing ``<id>.mat``; append timings; return the summary over all done.

    ``watershed`` is the OWT-UCM layout (:func:`wnet.postprocess.gpb.gpb_ucm2`); ``params`` the
    :class:`~wnet.postprocess.gpb.GPbParams` (None: the defaults).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "timings.jsonl"
    todo = [p for p in images if not (out_dir / f"{p.stem}.mat").is_file()]
    if todo:
        _compute(
            todo, out_dir, log, workers, (save_gpb, watershed, params), done_before=len(images) - len(todo)
        )
    wanted = {p.stem for p in images}
    records = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            if r["image"] in wanted:
                records[r["image"]] = r  # the latest run of an image counts
    summary = summarize(list(records.values()))
    (out_dir / "timings.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _compute(
    todo: list[Path], out_dir: Path, log: Path, workers: int, options: tuple, done_before: int
) -> None:
    """Run the images in spawned workers (``options``: the arguments after ``out_dir`` of
    :func:`process_image`), logging each one's timings as it finishes."""
    # BLAS reads its thread count when numpy loads: fresh (spawned) workers with one thread each
    # (numpy's threads spin-wait and, on a busy box, cost far more CPU than they save)
    saved = {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update(dict.fromkeys(ONE_THREAD, "1"))
    bar = tqdm(total=done_before + len(todo), initial=done_before, desc="gPb-owt-ucm", unit="img")
    try:
        ctx = multiprocessing.get_context("spawn")
        n = max(1, min(workers, len(todo)))
        with open(log, "a") as f, ProcessPoolExecutor(n, ctx, initializer=_one_thread) as pool:
            futures = [pool.submit(process_image, str(p), str(out_dir), *options) for p in todo]
            for fut in as_completed(futures):
                f.write(json.dumps(fut.result()) + "\n")
                f.flush()
                bar.update()
    finally:
        bar.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
