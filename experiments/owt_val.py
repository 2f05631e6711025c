"""Hierarchies side by side on a BSDS500 split, in the project's benchmark (the val tool).

Rows (all computed here, same harness, 99 thresholds):
  Canny-owt-ucm                 contours2ucm(canny_contours(image)), as wnet.baselines.canny_owt_ucm
  W-Net + CRF + OWT-UCM (soft-map contours)  the pipeline's ``owt`` hierarchy of the CRF-refined soft maps
  W-Net + CRF + hierarchy       the pipeline's ``merge`` hierarchy (the checkpoint's ``hierarchy``)
  gPb-owt-ucm (official ucm2)   the release's own val ucm2 files, when <data>/ucm2_gpb/<split> exists
  gPb-owt-ucm (computed)        row ``gpb-owt-ucm``: gPb computed here (wnet.postprocess.gpb), OWT-UCM
  W-Net + CRF + gPb (paper Alg. 2)   row ``alg2``: the pipeline's ``alg2`` hierarchy
  W-Net + CRF + gPb-owt-ucm (paper W-Net+ucm)  row ``wnet+ucm``: the pipeline's ``wnet+ucm``, combined by --combination;
                                ``wnet+ucm:max`` (or ``:mean``, ``:min``) names the combination per row

gPb of each image is computed once and kept in ``<out>/gpb_cache`` (or read from ``--gpb-dir``, the
``<id>.gpb.npz`` files of ``python -m wnet.postprocess.gpb --save-gpb``).

    python experiments/owt_val.py --checkpoint runs/ckpt_seed0/last.pt --data /path/to/BSDS500 --out runs/owt_val
    python experiments/owt_val.py ... --tune wnet     # sweep the W-Net signal (region benchmark)
    python experiments/owt_val.py ... --tune canny    # sweep the Canny anchor (region benchmark)
    python experiments/owt_val.py ... --tune wnet --tune-settings '{"alpha": 0.3}' '{"radius": 5}'
    python experiments/owt_val.py ... --boundary-images 20   # boundary benchmark on the first 20 only

A thin command over the library: soft maps come from ``wnet.inference.predict_image`` and the
CRF from ``wnet.postprocess.pipeline`` with the checkpoint's own settings (as task=bsds makes
them, cached under ``<out>/soft_maps``); without --tune the OWT rows use the library's defaults
(``OWTParams()``, ``baselines.CANNY_SIGMA`` / ``CANNY_SCALE``), the rows task=bsds computes.
Writes ``<out>/owt_val.md``, ``<out>/owt_val.json``, ``<out>/owt_val_pr.png`` and ``<out>/bench/<row>/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import scipy.io
import torch

from wnet import baselines, bsds
from wnet.bsds.report import plot_pr_curves
from wnet.bsds.table import COLUMNS, markdown_rows
from wnet.datasets.images import bsds_files, read_image
from wnet.inference import predict_image
from wnet.postprocess import OWTParams, Stages, canny_contours, contours2ucm, postprocess, postprocess_many
from wnet.postprocess.gpb import gpb_ucm2
from wnet.postprocess.gpb.cache import cached_gpb
from wnet.postprocess.paper import COMBINATION, COMBINATIONS
from wnet.tasks import load_wnet

# Defaults chosen on BSDS500 val with --tune (docs/postprocessing.md, "OWT-UCM"), read from the library
WNET_OWT = dataclasses.asdict(OWTParams())  # alpha 0.3, radius 10, image_radius 5, size_prior 400
CANNY = {"sigma": baselines.CANNY_SIGMA, "scale": baselines.CANNY_SCALE}
# Coordinate-wise sweeps: each key is varied around the defaults above, one at a time
WNET_SWEEP = {
    "alpha": [1.0, 0.7, 0.5, 0.3],
    "radius": [2, 3, 5],
    "image_radius": [3, 5],
    "size_prior": [0.0, 100.0, 400.0],
}
CANNY_SWEEP = {"sigma": [1.0, 2.0, 3.0], "scale": [1.0, 2.0, 4.0]}
ROWS = {
    "canny": "Canny-owt-ucm",
    "owt": "W-Net + CRF + OWT-UCM (soft-map contours)",
    "hierarchy": "W-Net + CRF + hierarchy",
    "gpb-owt-ucm": "gPb-owt-ucm (computed)",
    "alg2": "W-Net + CRF + gPb (paper Alg. 2)",
    "wnet+ucm": "W-Net + CRF + gPb-owt-ucm (paper W-Net+ucm)",
}
UCM = {"hierarchy": "merge", "owt": "owt", "alg2": "alg2", "wnet+ucm": "wnet+ucm"}  # row -> HIERARCHIES name


def soft_maps(checkpoint: str, files: list[Path], cache: Path) -> tuple[list[Path], Stages]:
    """CRF-refined soft maps (K, H, W) of every image, cached as float16 ``<cache>/<id>.npz``, and
    the checkpoint's post-processing stages (its ``crf`` and ``hierarchy`` sections)."""
    cache.mkdir(parents=True, exist_ok=True)
    model, cfg = load_wnet(checkpoint, torch.device("cpu"))
    stages = Stages(crf=cfg.crf, hierarchy=cfg.hierarchy)
    todo = [f for f in files if not (cache / f"{f.stem}.npz").is_file()]
    for start in range(0, len(todo), 4):
        batch = todo[start : start + 4]
        images = [read_image(f, cfg.model.in_channels) for f in batch]
        probs = [predict_image(model, img, "none", cfg.bsds.pad) for img in images]  # (K, H, W)
        for f, r in zip(batch, postprocess_many(probs, images, stages, ucms=(), workers=1), strict=True):
            np.savez_compressed(cache / f"{f.stem}.npz", q=r.refined.astype(np.float16))
        print(f"soft maps: {start + len(batch)}/{len(todo)}", flush=True)
    return [cache / f"{f.stem}.npz" for f in files], stages


def _gpb(image_path: Path, stages: Stages, gpb_dir: str):
    """The image's oriented gPb from ``gpb_dir`` (``<id>.gpb.npz``), or None (the pipeline computes
    it, cached in ``stages.gpb_cache``)."""
    path = Path(gpb_dir) / f"{image_path.stem}.gpb.npz" if gpb_dir else None
    return np.load(path)["orient"].astype(np.float64) if path is not None and path.is_file() else None


def _ucm2_job(args) -> tuple[str, np.ndarray]:
    """One image's ucm2 for one row: (row, params, image path, soft map path, stages, gPb folder)."""
    kind, params, image_path, maps_path, stages, gpb_dir = args
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rgb = read_image(image_path, 3)
    if kind == "canny":
        return image_path.stem, contours2ucm(canny_contours(rgb, params["sigma"], params["scale"])).astype(
            np.float32
        )
    if kind == "gpb-owt-ucm":
        orient = _gpb(image_path, stages, gpb_dir)
        orient = orient if orient is not None else cached_gpb(rgb, stages.gpb, stages.gpb_cache or None)
        return image_path.stem, gpb_ucm2(orient).astype(np.float32)
    q = np.load(maps_path)["q"].astype(np.float32)
    st = dataclasses.replace(stages, crf=dataclasses.replace(stages.crf, kind="none"))  # refined already
    if kind == "owt":
        st = dataclasses.replace(st, owt=OWTParams(**params))
    ucm = UCM[kind]
    out = postprocess(
        q, rgb, st, (ucm,), gpb=_gpb(image_path, stages, gpb_dir) if kind in ("alg2", "wnet+ucm") else None
    )
    return image_path.stem, out.ucm2[ucm].astype(np.float32)


def ucm2s(
    kind: str, params: dict, files, maps, stages, workers: int, gpb_dir: str = ""
) -> dict[str, np.ndarray]:
    jobs = [
        (kind, params, f, m, stages, gpb_dir) for f, m in zip(files, maps or [None] * len(files), strict=True)
    ]
    if workers <= 1:
        return dict(map(_ucm2_job, jobs))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(_ucm2_job, jobs, chunksize=2))


def score(preds: dict, gt_dir: Path, out: Path | None, args, bench: str) -> dict:
    t = time.time()
    s = bsds.evaluate_predictions(preds, gt_dir, out, args.nthresh, args.workers, bench=bench)
    s["bench_wall_s"] = time.time() - t
    return s


def tune(args, kind: str, files, maps, stages, gt_dir: Path) -> None:
    """Coordinate-wise sweep around the defaults, region benchmark; one line per setting."""
    base, sweep = (dict(WNET_OWT), WNET_SWEEP) if kind == "wnet" else (dict(CANNY), CANNY_SWEEP)
    settings = [(k, v, {**base, k: v}) for k, vs in sweep.items() for v in vs]
    if args.tune_settings:  # explicit settings (JSON), each over the defaults, instead of the sweep
        settings = [("setting", i, {**base, **json.loads(t)}) for i, t in enumerate(args.tune_settings)]
    print(
        "| setting | SC ODS | SC OIS | PRI ODS | PRI OIS | VI ODS | VI OIS | s / image |\n|---|---|---|---|---|---|---|---|"
    )
    seen = set()
    for key, v, params in settings:
        tag = json.dumps(params, sort_keys=True)
        if tag in seen:
            continue
        seen.add(tag)
        t = time.time()
        preds = ucm2s("canny" if kind == "canny" else "owt", params, files, maps, stages, args.workers)
        per_img = (time.time() - t) / len(files)
        s = score(preds, gt_dir, None, args, "region")
        cells = " | ".join(
            f"{s[c]:.3f}" for c in ("sc_ods", "sc_ois", "pri_ods", "pri_ois", "vi_ods", "vi_ois")
        )
        print(f"| {key}={v} ({tag}) | {cells} | {per_img:.2f} |", flush=True)


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="", help="W-Net checkpoint (file or run folder)")
    ap.add_argument("--data", required=True, help="BSDS500 root (images/, groundTruth/)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--out", default="runs/owt_val")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--nthresh", type=int, default=99)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--bench", default="all", choices=["all", "region"])
    ap.add_argument("--boundary-images", type=int, default=0, help="boundary benchmark on the first N only")
    ap.add_argument(
        "--rows",
        default="canny,owt,hierarchy,gpb",
        help="comma list of rows: canny, owt, hierarchy, gpb (the official files), gpb-owt-ucm, alg2, wnet+ucm",
    )
    ap.add_argument("--combination", default=COMBINATION, choices=list(COMBINATIONS), help="wnet+ucm's")
    ap.add_argument("--gpb-dir", default="", help="<id>.gpb.npz files of gPb computed before (--save-gpb)")
    ap.add_argument("--tune", default="", choices=["", "wnet", "canny"])
    ap.add_argument("--tune-settings", nargs="*", default=[], help="JSON dicts to try instead of the sweep")
    args = ap.parse_args(argv)
    wnet_rows = {"owt", "hierarchy", "alg2", "wnet+ucm"}
    keys = {r.partition(":")[0] for r in args.rows.split(",")}
    need_maps = args.tune == "wnet" or (not args.tune and wnet_rows & keys)
    if need_maps and not args.checkpoint:
        ap.error("the W-Net rows need --checkpoint")
    return args, need_maps


def _preds(args, key: str, files, maps, stages):
    """(row name, ucm2 per image), or None when the official gPb files are missing."""
    key, _, how = key.partition(":")  # wnet+ucm:max -> wnet+ucm combined by max
    if key != "gpb":
        params = {"canny": CANNY, "owt": WNET_OWT}.get(key, {})
        how = how or args.combination
        if key == "wnet+ucm":
            if how not in COMBINATIONS:
                raise SystemExit(f"error: --rows: unknown combination {how!r} in wnet+ucm:{how}")
            stages = dataclasses.replace(stages, combination=how)
        name = ROWS[key] + (f" [{how}]" if key == "wnet+ucm" else "")
        return name, ucm2s(key, params, files, maps, stages, args.workers, args.gpb_dir)
    src = Path(args.data) / "ucm2_gpb" / args.split
    if not src.is_dir():
        print(f"skipping gPb: {src} not found")
        return None
    return "gPb-owt-ucm (official ucm2 files)", {
        f.stem: scipy.io.loadmat(src / f"{f.stem}.mat")["ucm2"] for f in files
    }


def _row(args, key: str, files, maps, stages, gt_dir: Path, out: Path):
    """One row's (name, scores, PR curve or None), or None when its ucm2 files are missing."""
    t = time.time()
    named = _preds(args, key, files, maps, stages)
    if named is None:
        return None
    name, preds = named
    ucm_s = (time.time() - t) / len(files)
    key = key.replace(":", "_")  # the bench folder of wnet+ucm:max is bench/wnet+ucm_max
    s = score(preds, gt_dir, out / "bench" / key, args, "region" if args.boundary_images else args.bench)
    if args.boundary_images:  # the boundary benchmark on the first images only (it is slow)
        sub = {k: preds[k] for k in sorted(preds)[: args.boundary_images]}
        b = score(sub, gt_dir, out / "bench" / f"{key}_boundary", args, "boundary")
        s.update({k: v for k, v in b.items() if k.startswith("bdry_")}, boundary_images=len(sub))
    s["ucm2_s_per_image"] = ucm_s
    thr = out / "bench" / (f"{key}_boundary" if args.boundary_images else key) / "eval_bdry_thr.txt"
    curve = None
    if thr.is_file():
        a = np.atleast_2d(np.loadtxt(thr))
        curve = (a[:, 1], a[:, 2], s["bdry_ods_f"])
    print(f"{name}: " + " ".join(f"{c}={s[c]:.3f}" for c in COLUMNS if c in s) + f" ({ucm_s:.2f} s/img)")
    return name, s, curve


def main(argv=None) -> None:
    args, need_maps = _args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    files, gts = bsds_files(args.data, args.split)
    if args.max_images:
        files, gts = files[: args.max_images], gts[: args.max_images]
    gt_dir, out = gts[0].parent, Path(args.out)
    maps, stages = soft_maps(args.checkpoint, files, out / "soft_maps") if need_maps else (None, Stages())
    stages = dataclasses.replace(stages, gpb_cache=str(out / "gpb_cache"), combination=args.combination)
    if args.tune:
        return tune(args, args.tune, files, maps, stages, gt_dir)
    results, curves = {}, {}
    for key in args.rows.split(","):
        row = _row(args, key, files, maps, stages, gt_dir, out)
        if row is not None:
            name, results[name], curve = row
            if curve is not None:
                curves[name] = curve
    meta = (
        f"BSDS500 {args.split}, {len(files)} images, nthresh={args.nthresh}, bench={args.bench}"
        + (f" (boundary: first {args.boundary_images} images)" if args.boundary_images else "")
        + f"; checkpoint {args.checkpoint or '-'}; W-Net OWT {WNET_OWT}; Canny {CANNY}."
    )
    (out / "owt_val.md").write_text(meta + "\n\n" + "\n".join(markdown_rows(results)) + "\n")
    (out / "owt_val.json").write_text(json.dumps(results, indent=1, default=str))
    if curves:
        plot_pr_curves(out / "owt_val_pr.png", curves, title=f"BSDS500 {args.split} boundaries")
    print((out / "owt_val.md").read_text())


if __name__ == "__main__":
    try:
        main()
    except FileNotFoundError as e:  # a missing data folder or checkpoint: one line, no traceback
        sys.exit(f"owt_val: error: {e}")
