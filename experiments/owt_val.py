"""OWT-UCM beside the current hierarchy on BSDS500 val, in the project's benchmark.

Rows (all computed here, same harness, 99 thresholds):
  Canny-owt-ucm                 baselines.canny_owt_ucm(image) (task=bsds: baseline canny-owt-ucm)
  W-Net + CRF + OWT-UCM         contours.wnet_owt_ucm2(CRF-refined S, image, OWTParams)
  W-Net + CRF + hierarchy       hierarchy.to_ucm2(CRF-refined S, image, the checkpoint's hierarchy)
  gPb-owt-ucm (official ucm2)   the release's own val ucm2 files, when <data>/ucm2_gpb/<split> exists

    python experiments/owt_val.py --checkpoint runs/ckpt_seed0/last.pt --data ../shared/data/BSDS500 \\
        --out runs/owt_val
    python experiments/owt_val.py ... --tune wnet     # sweep the W-Net signal (region benchmark)
    python experiments/owt_val.py ... --tune canny    # sweep the Canny anchor (region benchmark)
    python experiments/owt_val.py ... --tune wnet --tune-settings '{"alpha": 0.3}' '{"radius": 5}'
    python experiments/owt_val.py ... --boundary-images 20   # boundary benchmark on the first 20 only

Without --tune, the two OWT rows use the defaults of task=bsds (``OWTParams()``, the ``owt``
config section; ``baselines.CANNY_SIGMA`` / ``CANNY_SCALE``), so they are the rows task=bsds
computes. W-Net predictions are made as task=bsds makes them (full resolution, mirror padding
``bsds.pad``, CRF with the checkpoint's ``crf`` settings) and cached under ``<out>/soft_maps``.
Writes ``<out>/owt_val.md`` (table), ``<out>/owt_val_pr.png`` and ``<out>/bench/<row>/``.
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

from wnet import baselines, bsds, crf, hierarchy
from wnet.bsds.report import plot_pr_curves
from wnet.contours import OWTParams, canny_contours, wnet_owt_ucm2
from wnet.datasets.images import bsds_files, read_image
from wnet.inference import predict
from wnet.owt import contours2ucm
from wnet.tasks.bsds import COLUMNS, HEADERS
from wnet.tasks.checkpoints import checkpoint_config, load_checkpoint, load_wnet

# Defaults chosen on BSDS500 val with this script's --tune (docs/postprocessing.md, "OWT-UCM"):
# those of task=bsds, read from the library so that the two never drift apart.
WNET_OWT = dataclasses.asdict(OWTParams())  # alpha 0.3, radius 10, image_radius 5, size_prior 400
CANNY = {"sigma": baselines.CANNY_SIGMA, "scale": baselines.CANNY_SCALE}
# Coordinate-wise sweeps: each key is varied around the defaults above, one at a time (the first
# W-Net sweep ran around alpha 0.5, radius 3, image_radius 3, size_prior 0; see the docs).
WNET_SWEEP = {
    "alpha": [1.0, 0.7, 0.5, 0.3],
    "radius": [2, 3, 5],
    "image_radius": [3, 5],
    "size_prior": [0.0, 100.0, 400.0],
}
CANNY_SWEEP = {"sigma": [1.0, 2.0, 3.0], "scale": [1.0, 2.0, 4.0]}


def soft_maps(checkpoint: str, files: list[Path], cache: Path) -> list[Path]:
    """CRF-refined soft maps S (K, H, W) of every image, cached as float16 ``<cache>/<id>.npz``.

    The checkpoint's own config (``load_wnet``: an older checkpoint's unknown keys are skipped)
    gives the model, ``bsds.pad`` and the ``crf`` settings."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = [f for f in files if not (cache / f"{f.stem}.npz").is_file()]
    if todo:
        model, cfg = load_wnet(checkpoint, torch.device("cpu"))
        for start in range(0, len(todo), 4):
            batch = todo[start : start + 4]
            images = [read_image(f, cfg.model.in_channels) for f in batch]
            probs = []
            with torch.no_grad():
                for img in images:
                    x = torch.from_numpy(img).permute(2, 0, 1)[None]
                    pad = min(cfg.bsds.pad, min(x.shape[-2:]) - 1)
                    probs.append(predict(model, x, "none", pad=pad)[0][0].numpy())  # (K, H, W)
            refined = (
                crf.dense_crf_batch(probs, images, cfg.crf, 1)
                if cfg.crf.kind == "dense"
                else [crf.refine(p, im, cfg.crf) for p, im in zip(probs, images, strict=True)]
            )
            for f, q in zip(batch, refined, strict=True):
                np.savez_compressed(cache / f"{f.stem}.npz", q=q.astype(np.float16))
            print(f"soft maps: {start + len(batch)}/{len(todo)}", flush=True)
    return [cache / f"{f.stem}.npz" for f in files]


def _ucm2_job(args) -> tuple[str, np.ndarray]:
    """One image's ucm2 for one row: (row kind, params, image path, soft map path, hierarchy params)."""
    kind, params, image_path, maps_path, hier_params = args
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rgb = read_image(image_path, 3)
    if kind == "canny":
        u = contours2ucm(canny_contours(rgb, params["sigma"], params["scale"]))
    else:
        q = np.load(maps_path)["q"].astype(np.float32)
        if kind == "hierarchy":
            u = hierarchy.to_ucm2(q, rgb, hier_params)
        else:
            u = wnet_owt_ucm2(q, rgb, OWTParams(**params))
    return image_path.stem, u.astype(np.float32)


def ucm2s(kind: str, params: dict, files, maps, hier_params, workers: int) -> dict[str, np.ndarray]:
    jobs = [
        (kind, params, f, m, hier_params) for f, m in zip(files, maps or [None] * len(files), strict=True)
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


def tune(args, kind: str, files, maps, gt_dir: Path) -> None:
    """Coordinate-wise sweep around the defaults, region benchmark; one line per setting."""
    base, sweep = (dict(WNET_OWT), WNET_SWEEP) if kind == "wnet" else (dict(CANNY), CANNY_SWEEP)
    settings = [(k, v, {**base, k: v}) for k, vs in sweep.items() for v in vs]
    if args.tune_settings:  # explicit settings (JSON), each over the defaults, instead of the sweep
        settings = [("setting", i, {**base, **json.loads(t)}) for i, t in enumerate(args.tune_settings)]
    seen = set()
    print("| setting | SC ODS | SC OIS | PRI ODS | PRI OIS | VI ODS | VI OIS | s / image |")
    print("|---|---|---|---|---|---|---|---|")
    for key, v, params in settings:
        tag = json.dumps(params, sort_keys=True)
        if tag in seen:
            continue
        seen.add(tag)
        t = time.time()
        preds = ucm2s(kind, params, files, maps, None, args.workers)
        per_img = (time.time() - t) / len(files)
        s = score(preds, gt_dir, None, args, "region")
        cells = [s[c] for c in ("sc_ods", "sc_ois", "pri_ods", "pri_ois", "vi_ods", "vi_ois")]
        print(f"| {key}={v} ({tag}) | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {per_img:.2f} |")
        sys.stdout.flush()


def write_table(path: Path, rows: dict[str, dict], meta: str) -> None:
    lines = [meta, "", f"| method | {' | '.join(HEADERS)} |", "|---" * (len(HEADERS) + 1) + "|"]
    for name, s in rows.items():
        lines.append(f"| {name} | " + " | ".join("" if c not in s else f"{s[c]:.3f}" for c in COLUMNS) + " |")
    path.write_text("\n".join(lines) + "\n")


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
    ap.add_argument("--rows", default="canny,owt,hierarchy,gpb", help="comma list of rows to compute")
    ap.add_argument("--tune", default="", choices=["", "wnet", "canny"])
    ap.add_argument("--tune-settings", nargs="*", default=[], help="JSON dicts to try instead of the sweep")
    args = ap.parse_args(argv)
    need_maps = args.tune == "wnet" or (not args.tune and {"owt", "hierarchy"} & set(args.rows.split(",")))
    if need_maps and not args.checkpoint:
        ap.error("the W-Net rows need --checkpoint")
    return args, need_maps


def _row(args, key: str, files, maps, hier_params, gt_dir: Path, out: Path):
    """One row's (name, scores, PR curve or None), or None when its ucm2 files are missing."""
    t = time.time()
    if key == "gpb":
        src = Path(args.data) / "ucm2_gpb" / args.split
        if not src.is_dir():
            print(f"skipping gPb: {src} not found")
            return None
        name = "gPb-owt-ucm (official ucm2 files)"
        preds = {f.stem: scipy.io.loadmat(src / f"{f.stem}.mat")["ucm2"] for f in files}
    else:
        name, kind, params = {
            "canny": ("Canny-owt-ucm", "canny", CANNY),
            "owt": ("W-Net + CRF + OWT-UCM", "owt", WNET_OWT),
            "hierarchy": ("W-Net + CRF + hierarchy", "hierarchy", {}),
        }[key]
        preds = ucm2s(kind, params, files, maps, hier_params, args.workers)
    ucm_s = (time.time() - t) / len(files)
    bench = "region" if args.boundary_images else args.bench
    s = score(preds, gt_dir, out / "bench" / key, args, bench)
    if args.boundary_images:  # the boundary benchmark on the first images only (it is slow)
        sub = {k: preds[k] for k in sorted(preds)[: args.boundary_images]}
        b = score(sub, gt_dir, out / "bench" / f"{key}_boundary", args, "boundary")
        s.update({k: v for k, v in b.items() if k.startswith("bdry_")}, boundary_images=len(sub))
    s["ucm2_s_per_image"] = ucm_s
    bdir = out / "bench" / (f"{key}_boundary" if args.boundary_images else key)
    curve = None
    if (bdir / "eval_bdry_thr.txt").is_file():
        thr = np.atleast_2d(np.loadtxt(bdir / "eval_bdry_thr.txt"))
        curve = (thr[:, 1], thr[:, 2], s["bdry_ods_f"])
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
    maps = soft_maps(args.checkpoint, files, out / "soft_maps") if need_maps else None
    if args.tune:
        return tune(args, args.tune, files, maps, gt_dir)
    hier_params = (
        checkpoint_config(load_checkpoint(args.checkpoint), args.checkpoint).hierarchy if maps else None
    )
    results, curves = {}, {}
    for key in args.rows.split(","):
        row = _row(args, key, files, maps, hier_params, gt_dir, out)
        if row is not None:
            name, results[name], curve = row
            if curve is not None:
                curves[name] = curve
    meta = (
        f"BSDS500 {args.split}, {len(files)} images, nthresh={args.nthresh}, bench={args.bench}"
        + (f" (boundary: first {args.boundary_images} images)" if args.boundary_images else "")
        + f"; checkpoint {args.checkpoint or '-'}; W-Net OWT {WNET_OWT}; Canny {CANNY}."
    )
    write_table(out / "owt_val.md", results, meta)
    (out / "owt_val.json").write_text(json.dumps(results, indent=1, default=str))
    if curves:
        plot_pr_curves(out / "owt_val_pr.png", curves, title=f"BSDS500 {args.split} boundaries")
    print((out / "owt_val.md").read_text())


if __name__ == "__main__":
    try:
        main()
    except FileNotFoundError as e:  # a missing data folder or checkpoint: one line, no traceback
        sys.exit(f"owt_val: error: {e}")
