"""``task=bsds``: a trained W-Net turned into a BSDS500 results table, beside classical baselines.

    python experiments/run.py --config experiments/configs/bsds500_cpu.yaml data.root=/path/to/BSDS500

1. Train on ``data.splits`` (BSDS500 train+val), or load ``checkpoint=``.
2. Predict the ``bsds.split`` images (test) at full resolution.
3. Post-process: dense CRF (``crf.*``), then hierarchical merging into a ucm2 (``hierarchy.*``)
   and the other hierarchies of ``bsds.ucms`` (wnet.postprocess.HIERARCHIES): OWT-UCM on soft-map
   contours (``owt.*``), the paper's Alg. 2 and W-Net+ucm (gPb of the image, cached per image in
   ``bsds.gpb_cache`` and shared with the gpb-owt-ucm baseline).
   ``ucm`` names the pipeline's own hierarchy (owt by default), whose row is logged as ``bsds/<metric>``.
4. Score every method with the BSDS benchmark port (``wnet.bsds``), in the same harness:
   W-Net raw (argmax), W-Net + CRF, W-Net + CRF + hierarchy, W-Net + CRF + OWT-UCM, and the
   baselines in ``bsds.baselines`` (label-map sweeps, and canny-owt-ucm, a ucm2).
5. Write ``bsds500_results.md``, ``bsds500_results.csv`` and ``bsds500_pr.png``; log them to W&B.
   The published rows (``PUBLISHED``) are quoted beside the computed ones, never mixed with them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wnet import baselines, bsds
from wnet.bsds.io import PRED_SUFFIXES
from wnet.bsds.report import plot_pr_curves
from wnet.bsds.table import COLUMNS, write_tables
from wnet.datasets.images import bsds_files, read_image
from wnet.inference import predict_image
from wnet.postprocess import contours, crf, owt, ucm
from wnet.postprocess import gpb as gpb_package
from wnet.postprocess.pipeline import postprocess_many
from wnet.tasks import distributed, unsupervised
from wnet.tasks.build import build_unlabelled, gpb_cache, stages
from wnet.tasks.config import Config
from wnet.tasks.errors import InputError
from wnet.tasks.runtime import Run, load_wnet, open_run, stop_if_signalled

PIPELINE_ROW = {  # the row of each hierarchy of the pipeline (wnet.postprocess.HIERARCHIES)
    "merge": "W-Net + CRF + hierarchy",
    "owt": "W-Net + CRF + OWT-UCM (soft-map contours)",
    "alg2": "W-Net + CRF + gPb (paper Alg. 2)",
    "wnet+ucm": "W-Net + CRF + gPb-owt-ucm (paper W-Net+ucm)",  # not the quoted "W-Net+ucm (paper)"
}
_RAW, _CRF = "W-Net raw (argmax)", "W-Net + CRF"  # the flat rows: argmax components


def load_model(run: Run, data):
    """W-Net from ``checkpoint=`` or trained now in this run: (model, its model config, training seconds or None)."""
    cfg = run.cfg
    if cfg.checkpoint:
        model, saved = load_wnet(cfg.checkpoint, run.device)
        return model, saved.model, None
    out = unsupervised.train(run, data)
    return out["model"].to(run.device), cfg.model, out["train_time"]


@torch.no_grad()
def wnet_predictions(cfg: Config, model, files: list[Path], stop=None) -> dict[str, dict]:
    """Per image: raw argmax labels, CRF argmax labels and the CRF + hierarchy ucm2.

    Under data parallelism each rank processes its share of ``files``; rank 0 gets them all
    (the other ranks get empty dicts). ``stop(during)``, called before each batch, raises to end
    the run (a SIGTERM: :func:`wnet.tasks.runtime.stop_if_signalled`)."""
    mine = distributed.shard(files)
    methods = _predict_files(cfg, model, mine, stop)
    return {name: distributed.gather_dicts(preds) for name, preds in methods.items()}


def _predict_files(cfg: Config, model, files: list[Path], stop=None) -> dict[str, dict]:
    ucms = tuple(cfg.bsds.ucms)
    methods: dict[str, dict] = {name: {} for name in [_RAW, _CRF, *(PIPELINE_ROW[u] for u in ucms)]}
    chunk = max(1, cfg.train.batch_size)
    for start in tqdm(range(0, len(files), chunk), desc="W-Net + post-processing", unit="batch"):
        if stop:
            stop("W-Net post-processing")
        batch = files[start : start + chunk]
        images = [read_image(f, cfg.model.in_channels) for f in batch]  # (H, W, C) in [0, 1]
        # full resolution, one at a time (sizes differ: 481x321 / 321x481)
        probs = [predict_image(model, img, cfg.train.amp, cfg.bsds.pad) for img in images]  # (K, H, W)
        results = postprocess_many(probs, images, stages(cfg, gpb_cache(cfg)), ucms, regions=True)
        for f, r in zip(batch, results, strict=True):
            # labels from 1, as the benchmark's segs: label 0 is no region for the covering
            # (the official regionprops reading), so a 0-based map would lose one region per image
            methods[_RAW][f.stem] = r.regions["raw"] + 1
            methods[_CRF][f.stem] = r.regions["refined"] + 1
            for name in ucms:
                methods[PIPELINE_ROW[name]][f.stem] = r.ucm2[name].astype(np.float32)
    return methods


def _baseline_job(args):
    name, path, gpb_cache = args
    rgb = (read_image(path, 3) * 255 + 0.5).astype(np.uint8)
    return path.stem, baselines.baseline_prediction(name, rgb, gpb_cache)


def baseline_predictions(cfg: Config, files: list[Path], name: str) -> dict[str, np.ndarray]:
    """Baseline ``name`` for every file, in a process pool: label-map stacks (levels, H, W), or
    for ``baselines.UCM2_BASELINES`` one ucm2 (2H+1, 2W+1) each (the benchmark reads both)."""
    jobs = [(name, f, gpb_cache(cfg)) for f in files]
    with ProcessPoolExecutor(max_workers=cfg.bsds.workers or None) as pool:
        return dict(
            tqdm(pool.map(_baseline_job, jobs, chunksize=4), total=len(jobs), desc=f"baseline {name}")
        )


def _source_digest(*modules) -> str:
    """A hash of the modules' source files (a package: every .py, .c and .npz file under it)."""
    h = hashlib.sha1()
    for mod in modules:
        root = Path(mod.__file__)
        pkg = root.name == "__init__.py"
        files = sorted(f for x in ("py", "c", "npz") for f in root.parent.rglob(f"*.{x}")) if pkg else [root]
        for f in files:
            h.update(f.read_bytes())
    return h.hexdigest()


def baseline_cache_dir(cfg: Config, name: str, files: list[Path]) -> Path:
    """Where a baseline's benchmark output is kept between runs.

    Baselines do not depend on the W-Net, so re-running the pipeline after another training run
    reuses their scores. The key covers everything they depend on: the source of the baselines
    and of the benchmark (so a changed constant or algorithm never serves stale scores), for a
    ucm2 baseline also that of the contour signal, the watershed + UCM and the image conversion
    (``wnet.postprocess.contours``, ``wnet.postprocess.owt``, ``wnet.postprocess.ucm``, ``wnet.postprocess.crf``) and scikit-image's version,
    OpenCV's version, the image files and the number of thresholds.
    """
    import cv2
    import skimage

    sources = (baselines, bsds) + ((contours, owt, ucm, crf) if name in baselines.UCM2_BASELINES else ())
    sources += (gpb_package,) if name == "gpb-owt-ucm" else ()
    key = repr(
        (
            name,
            _source_digest(*sources),
            cv2.__version__,
            skimage.__version__ if name in baselines.UCM2_BASELINES else None,
            [str(f.resolve()) for f in files],
            cfg.bsds.nthresh,
        )
    )
    return Path(cfg.out_dir) / "bsds_cache" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def _read_thr(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision per threshold from the official ``eval_bdry_thr.txt``."""
    a = np.atleast_2d(np.loadtxt(path))
    return a[:, 1], a[:, 2]


def _slug(name: str) -> str:
    for a, b in ((" ", "_"), (":", ""), ("+", "plus"), ("(", ""), (")", "")):
        name = name.lower().replace(a, b)
    return name


def score_baseline(cfg: Config, name: str, files: list[Path], gt_dir: Path, out: Path) -> dict:
    """A baseline's benchmark summary, computed once and cached (it does not depend on the W-Net)."""
    cache = baseline_cache_dir(cfg, name, files)
    if not (cache / "summary.json").is_file():
        preds = baseline_predictions(cfg, files, name)
        bsds.evaluate_predictions(preds, gt_dir, cache, cfg.bsds.nthresh, cfg.bsds.workers or None)
    else:
        print(f"baseline {name}: reusing cached scores from {cache}")
    shutil.copytree(cache, out, dirs_exist_ok=True)
    return json.loads((out / "summary.json").read_text())


def score_all(
    cfg: Config, methods: dict, files: list[Path], gt_dir: Path, bench_dir: Path, external: dict, stop=None
):
    """Benchmark the W-Net rows, the external ucm2 folders and the baselines in one harness.

    ``external``: ``{name: (ground-truth folder, split)}`` of ``bsds.external``
    (:func:`external_ground_truth`, resolved before training). ``stop(during)`` is called before
    each row, as in :func:`wnet_predictions`.

    Returns ``(rows, curves)``: ``{name: summary}`` and ``{name: (recall, precision, ods_f)}``.
    """
    rows, curves = {}, {}
    names = [
        *methods,
        *(f"external: {e}" for e in external),
        *(f"baseline: {b}" for b in cfg.bsds.baselines),
    ]
    for name in names:
        if stop:
            stop("the benchmark")
        out, workers = bench_dir / _slug(name), cfg.bsds.workers or None
        if name.startswith("baseline: "):
            s = score_baseline(cfg, name.removeprefix("baseline: "), files, gt_dir, out)
        elif name.startswith("external: "):
            key = name.removeprefix("external: ")
            gt, split = external[key]
            s = bsds.evaluate(cfg.bsds.external[key], gt, out, cfg.bsds.nthresh, workers)
            if split != cfg.bsds.split:  # say so in the row: these are other images
                name = f"{name} (BSDS500 {split}, {s['n_images']} images)"
        else:
            s = bsds.evaluate_predictions(methods[name], gt_dir, out, cfg.bsds.nthresh, workers)
        rows[name] = s
        curves[name] = (*_read_thr(out / "eval_bdry_thr.txt"), s["bdry_ods_f"])
        print(f"{name}: " + " ".join(f"{c}={s[c]:.3f}" for c in COLUMNS) + f" ({s['seconds']:.0f}s)")
    return rows, curves


def log_scores(run: Run, rows: dict[str, dict], headline: str = PIPELINE_ROW["owt"]) -> dict[str, float]:
    """Every row's scores as W&B scalars ``bsds/<row>/<column>``, and the full pipeline's (the row
    ``headline``: that of ``ucm``) also as ``bsds/<column>`` (``bsds/pri_ods``: what a sweep
    maximises); in the run's history and its summary."""
    values = {f"bsds/{_slug(name)}/{c}": float(s[c]) for name, s in rows.items() for c in COLUMNS}
    full = rows.get(headline)
    if full is not None:
        values.update({f"bsds/{c}": float(full[c]) for c in COLUMNS})
    run.sink.log(values)
    run.sink.summary(values)
    return values


def external_ground_truth(cfg: Config, name: str) -> tuple[Path, str]:
    """The ground-truth folder and split of ``bsds.external.<name>``: the scored split if it holds
    every image of the folder, else val, test or train (gPb-owt-ucm on val beside a test table).
    Checked before any training."""
    folder = Path(cfg.bsds.external[name])
    if not folder.is_dir():
        raise InputError(f"bsds.external.{name}: folder {folder} does not exist (expected ucm2 .mat files)")
    ids = {p.stem for p in folder.iterdir() if p.suffix.lower() in PRED_SUFFIXES}
    for split in dict.fromkeys([cfg.bsds.split, "val", "test", "train"]):
        gt = Path(cfg.data.root) / "groundTruth" / split
        if ids and all((gt / f"{i}.mat").is_file() for i in ids):
            return gt, split
    raise InputError(
        f"bsds.external.{name}: the {len(ids)} predictions in {folder} are not all images of one split "
        f"of {cfg.data.root}/groundTruth (expected <id>.mat files named as the BSDS500 images)"
    )


def main(cfg: Config) -> dict:
    if cfg.data.name != "bsds500" or not cfg.data.root:
        raise ValueError("task=bsds needs data.name=bsds500 and data.root=<BSDS500 folder>")
    external = {name: external_ground_truth(cfg, name) for name in cfg.bsds.external}
    start = time.time()
    try:
        files, gts = bsds_files(cfg.data.root, cfg.bsds.split)  # the scored split, at full resolution
    except FileNotFoundError as e:
        raise InputError(str(e)) from e
    data = None if cfg.checkpoint else build_unlabelled(cfg)  # before the run folder
    with open_run(cfg, job_type="bsds") as run:
        cfg = run.cfg
        model, model_cfg, train_time = load_model(run, data)  # train on train+val, or load a checkpoint
        if cfg.bsds.max_images:
            files, gts = files[: cfg.bsds.max_images], gts[: cfg.bsds.max_images]
        t0 = time.time()
        stop = functools.partial(stop_if_signalled, run)  # a SIGTERM now ends the run between batches
        methods = wnet_predictions(cfg, model, files, stop)
        print(f"W-Net predictions + post-processing: {time.time() - t0:.0f}s")
        if not run.dist.main:  # rank 0 scores everything
            return {"run_dir": str(run.dir), "rows": {}}
        rows, curves = score_all(cfg, methods, files, gts[0].parent, run.dir / "bench", external, stop)

        trained = (
            f"(loaded {cfg.checkpoint})"
            if cfg.checkpoint
            else f"{cfg.train.iterations} iterations in {train_time:.0f}s"
        )
        meta = (
            f"BSDS500 {cfg.bsds.split}, {len(files)} images, nthresh={cfg.bsds.nthresh}; W-Net K={model_cfg.k}, "
            f"width {model_cfg.base_width}, trained {trained}; CRF {cfg.crf.kind}, hierarchy {cfg.hierarchy.mode}"
            + (f", OWT-UCM {dataclasses.asdict(cfg.owt)}" if "owt" in cfg.bsds.ucms else "")
            + (
                ", gPb: the BSDS500 release's weights (fitted with labels)"
                if {"alg2", "wnet+ucm"} & set(cfg.bsds.ucms)
                else ""
            )
            + f"; whole pipeline {(time.time() - start) / 60:.1f} min."
        )
        md, cs = write_tables(run.dir, rows, meta)
        log_scores(run, rows, PIPELINE_ROW[cfg.ucm])
        plot_pr_curves(run.dir / "bsds500_pr.png", curves, title="BSDS500 boundaries")
        print(md.read_text())
        run.sink.table(
            "bsds500_results", ["method", *COLUMNS], [[n, *[s[c] for c in COLUMNS]] for n, s in rows.items()]
        )
        run.sink.image_file("bsds500_pr", run.dir / "bsds500_pr.png")
        run.sink.artifact(cs, name=f"{cfg.name}-bsds500-results".replace("/", "-"), type="results")
        return {"run_dir": str(run.dir), "rows": rows, "markdown": str(md), "csv": str(cs)}
