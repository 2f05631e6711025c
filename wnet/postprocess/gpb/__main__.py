"""Command line: gPb-owt-ucm of every image of a folder, cached per image and resumable.

    python -m wnet.postprocess.gpb IMAGES_DIR OUT_DIR [--workers N] [--save-gpb] [--limit N]

Writes ``OUT_DIR/<id>.mat`` (key ``ucm2``, (2H+1, 2W+1), the layout ``python -m wnet.bsds``
reads), ``OUT_DIR/<id>.gpb.npz`` with ``--save-gpb`` (the oriented gPb, float16), one line per
image in ``OUT_DIR/timings.jsonl`` (CPU and wall seconds of each stage, :mod:`.timing`) and
``OUT_DIR/timings.json`` (the summary over every image done so far: median, p90 and max of the
total CPU and wall seconds, median of each stage).
An image whose ``.mat`` exists is skipped, so an interrupted run resumes; files are written
under a temporary name and renamed, so a killed run never leaves a partial ``.mat``. Each
worker runs numpy, OpenCV and torch on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

# one BLAS / OpenMP thread per process: read when numpy loads, so set before importing it
# (this module is the command line, never imported by the library)
for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402


def _one_thread() -> None:
    import cv2

    cv2.setNumThreads(1)


def process_image(path: str, out_dir: str, save_gpb: bool) -> dict:
    """gPb-owt-ucm of one image into ``out_dir``; returns its stage timings (seconds)."""
    import scipy.io

    from wnet.datasets.images import read_image
    from wnet.postprocess.gpb import gpb, gpb_ucm2
    from wnet.postprocess.gpb.timing import timed

    _one_thread()
    stem, out = Path(path).stem, Path(out_dir)
    start, start_cpu = time.perf_counter(), time.process_time()
    image = (read_image(path) * 255).round().astype(np.uint8)
    g = gpb(image)
    timings = dict(g.timings)
    with timed(timings, "owt_ucm"):
        ucm2 = gpb_ucm2(g.orient)
    if save_gpb:
        tmp = out / f".{stem}.gpb.tmp.npz"
        np.savez_compressed(tmp, orient=g.orient.astype(np.float16), mpb=g.mpb.astype(np.float16))
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


def run(images: list[Path], out_dir: Path, workers: int = 1, save_gpb: bool = False) -> dict:
    """Compute every missing ``<id>.mat``; append timings; return the summary over all done."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "timings.jsonl"
    todo = [p for p in images if not (out_dir / f"{p.stem}.mat").is_file()]
    bar = tqdm(total=len(images), initial=len(images) - len(todo), desc="gPb-owt-ucm", unit="img")
    with open(log, "a") as f:
        if workers <= 1:
            results = (process_image(str(p), str(out_dir), save_gpb) for p in todo)
            for r in results:
                f.write(json.dumps(r) + "\n")
                f.flush()
                bar.update()
        else:
            with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
                futures = [pool.submit(process_image, str(p), str(out_dir), save_gpb) for p in todo]
                for fut in as_completed(futures):
                    f.write(json.dumps(fut.result()) + "\n")
                    f.flush()
                    bar.update()
    bar.close()
    done = {p.stem for p in images}
    records = {}
    for line in log.read_text().splitlines():
        r = json.loads(line)
        if r["image"] in done:
            records[r["image"]] = r  # the latest run of an image counts
    summary = summarize(list(records.values()))
    (out_dir / "timings.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wnet.postprocess.gpb", description=__doc__.split("\n\n")[0])
    ap.add_argument("images_dir", help="folder of images (jpg, png, ...), searched recursively")
    ap.add_argument("out_dir", help="where <id>.mat (key ucm2) and the timings go")
    ap.add_argument("--workers", type=int, default=1, help="processes, one image each (default 1)")
    ap.add_argument("--save-gpb", action="store_true", help="also keep the oriented gPb as <id>.gpb.npz")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (name order)")
    args = ap.parse_args(argv)
    _one_thread()
    from wnet.datasets.images import list_images

    try:
        images = list_images(args.images_dir)[: args.limit]
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    summary = run(images, Path(args.out_dir), args.workers, args.save_gpb)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
