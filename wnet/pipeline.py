"""``task=bsds``: a trained W-Net turned into a BSDS500 results table, beside classical baselines.

    python experiments/run.py --config experiments/configs/bsds500_cpu.yaml data.root=/path/to/BSDS500

1. Train on ``data.splits`` (BSDS500 train+val), or load ``checkpoint=``.
2. Predict the ``bsds.split`` images (test) at full resolution.
3. Post-process: dense CRF (``crf.*``), then hierarchical merging into a ucm2 (``hierarchy.*``).
4. Score every method with the BSDS benchmark port (``wnet.bsds``), in the same harness:
   W-Net raw (argmax), W-Net + CRF, W-Net + CRF + hierarchy, and the baselines in ``bsds.baselines``.
5. Write ``bsds500_results.md``, ``bsds500_results.csv`` and ``bsds500_pr.png``; log them to W&B.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data.images import bsds_files, read_image
from wnet import baselines, bsds, crf, hierarchy
from wnet.baselines import run_baseline
from wnet.config import Config, config_from_dict
from wnet.runtime import load_checkpoint, start_run
from wnet.train import build_wnet, predict
from wnet.train import main as train_main
from wnet.wandb_sink import WandbSink

# Arbelaez et al. 2011 (TPAMI), table 1/3, BSDS500 test: published, not computed here.
GPB_OWT_UCM = {
    "sc_ods": 0.588, "sc_ois": 0.647, "pri_ods": 0.827, "pri_ois": 0.856, "vi_ods": 1.690, "vi_ois": 1.475,
    "bdry_ods_f": 0.726, "bdry_ois_f": 0.760, "bdry_ap": 0.727,
}  # fmt: skip
COLUMNS = [
    "sc_ods",
    "sc_ois",
    "pri_ods",
    "pri_ois",
    "vi_ods",
    "vi_ois",
    "bdry_ods_f",
    "bdry_ois_f",
    "bdry_ap",
]
HEADERS = ["SC ODS", "SC OIS", "PRI ODS", "PRI OIS", "VI ODS", "VI OIS", "F ODS", "F OIS", "AP"]


def load_model(cfg: Config, device: torch.device):
    """W-Net from ``cfg.checkpoint`` (its own saved model config wins) or trained now."""
    if cfg.checkpoint:
        ckpt = load_checkpoint(cfg.checkpoint)
        saved = config_from_dict(ckpt["config"])
        cfg.model = saved.model  # the architecture must match the weights
        model = build_wnet(cfg)
        model.load_state_dict(ckpt["models"]["wnet"])
        print(f"loaded {cfg.checkpoint} (step {ckpt['step']})")
        return model.to(device), None
    out = train_main(cfg)
    return out["model"].to(device), out["train_time"]


@torch.no_grad()
def wnet_predictions(cfg: Config, model, files: list[Path], device) -> dict[str, dict]:
    """Per image: raw argmax labels, CRF argmax labels and the CRF + hierarchy ucm2."""
    raw, crf_flat, crf_ucm = {}, {}, {}
    chunk = max(1, cfg.train.batch_size)
    for start in tqdm(range(0, len(files), chunk), desc="W-Net + post-processing", unit="batch"):
        batch = files[start : start + chunk]
        images = [read_image(f, cfg.model.in_channels) for f in batch]  # (H, W, C) in [0, 1]
        probs = []
        for img in images:  # full resolution, one at a time (sizes differ: 481x321 / 321x481)
            x = torch.from_numpy(img).permute(2, 0, 1)[None]
            pad = min(cfg.bsds.pad, min(x.shape[-2:]) - 1)  # mirror padding needs pad < size
            probs.append(predict(model, x, cfg, device, pad=pad)[0][0].cpu().numpy())  # (K, H, W)
        refined = (
            crf.dense_crf_batch(probs, images, cfg.crf, cfg.crf.workers or None)
            if cfg.crf.kind == "dense"
            else [crf.refine(p, im, cfg.crf) for p, im in zip(probs, images, strict=True)]
        )
        for f, img, p, q in zip(batch, images, probs, refined, strict=True):
            raw[f.stem] = hierarchy.flat_labels(p, None, _no_absorb(cfg)).astype(np.int32)
            crf_flat[f.stem] = hierarchy.flat_labels(q, None, _no_absorb(cfg)).astype(np.int32)
            crf_ucm[f.stem] = hierarchy.to_ucm2(q, img, cfg.hierarchy).astype(np.float32)
    return {"W-Net raw (argmax)": raw, "W-Net + CRF": crf_flat, "W-Net + CRF + hierarchy": crf_ucm}


def _no_absorb(cfg: Config):
    """Flat rows are the plain argmax components: no small-region absorption."""
    h = type(cfg.hierarchy)(**vars(cfg.hierarchy))
    h.min_region = 1
    return h


def _baseline_job(args):
    name, path = args
    rgb = (read_image(path, 3) * 255 + 0.5).astype(np.uint8)
    return path.stem, np.stack(run_baseline(name, rgb)).astype(np.int32)


def baseline_predictions(cfg: Config, files: list[Path], name: str) -> dict[str, np.ndarray]:
    """Label-map stacks (levels, H, W) of baseline ``name`` for every file, in a process pool."""
    jobs = [(name, f) for f in files]
    with ProcessPoolExecutor(max_workers=cfg.bsds.workers or None) as pool:
        return dict(
            tqdm(pool.map(_baseline_job, jobs, chunksize=4), total=len(jobs), desc=f"baseline {name}")
        )


def baseline_cache_dir(cfg: Config, name: str, files: list[Path]) -> Path:
    """Where a baseline's benchmark output is kept between runs.

    Baselines do not depend on the W-Net, so re-running the pipeline after another training run
    reuses their scores. The key covers everything they depend on: the sweep constants, the
    image files and the number of thresholds.
    """
    sweep = (
        baselines.KMEANS_K,
        baselines.MEANSHIFT_SR,
        baselines.MEANSHIFT_SP,
        baselines.FH_K,
        baselines.FH_SIGMA,
    )
    key = repr((name, sweep, [str(f.resolve()) for f in files], cfg.bsds.nthresh))
    return Path(cfg.out_dir) / "bsds_cache" / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def pr_plot(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> None:
    """Boundary precision/recall of every method on one plot, with iso-F lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    r = np.linspace(0.01, 1, 200)
    for f in np.arange(0.1, 1.0, 0.1):
        p = f * r / (2 * r - f)
        ok = (p > 0) & (p <= 1)
        ax.plot(r[ok], p[ok], color="0.85", lw=0.8)
    for name, (rec, prec, fods) in curves.items():
        style = "o-" if len(rec) == 1 else "-"
        ax.plot(rec, prec, style, lw=1.5, ms=4, label=f"[F={fods:.3f}] {name}")
    ax.plot([0.7], [0.9], "k*", ms=0)  # keep limits stable
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Recall", ylabel="Precision", title="BSDS500 boundaries")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _read_thr(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision per threshold from the official ``eval_bdry_thr.txt``."""
    a = np.atleast_2d(np.loadtxt(path))
    return a[:, 1], a[:, 2]


def write_tables(run_dir: Path, rows: dict[str, dict], meta: str) -> tuple[Path, Path]:
    md, cs = run_dir / "bsds500_results.md", run_dir / "bsds500_results.csv"
    lines = [f"| method | {' | '.join(HEADERS)} |", "|---" * (len(HEADERS) + 1) + "|"]
    for name, s in rows.items():
        vals = " | ".join("" if np.isnan(s.get(c, np.nan)) else f"{s[c]:.3f}" for c in COLUMNS)
        lines.append(f"| {name} | {vals} |")
    vals = " | ".join(f"{GPB_OWT_UCM[c]:.3f}" for c in COLUMNS)
    lines.append(f"| gPb-owt-ucm (published, Arbelaez et al. 2011; not computed here) | {vals} |")
    md.write_text(meta + "\n\n" + "\n".join(lines) + "\n")
    with open(cs, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", *COLUMNS, "source"])
        for name, s in rows.items():
            w.writerow([name, *[f"{s.get(c, float('nan')):.4f}" for c in COLUMNS], "computed"])
        w.writerow(["gPb-owt-ucm", *[GPB_OWT_UCM[c] for c in COLUMNS], "published"])
    return md, cs


def main(cfg: Config) -> dict:
    if cfg.data.name != "bsds500" or not cfg.data.root:
        raise ValueError("task=bsds needs data.name=bsds500 and data.root=<BSDS500 folder>")
    start = time.time()
    run_dir, device = start_run(cfg)

    # -- model: train on train+val, or load a checkpoint
    model, train_time = load_model(cfg, device)

    # -- the scored split at full resolution
    files, gts = bsds_files(cfg.data.root, cfg.bsds.split)
    if cfg.bsds.max_images:
        files, gts = files[: cfg.bsds.max_images], gts[: cfg.bsds.max_images]
    gt_dir = gts[0].parent
    t0 = time.time()
    methods = wnet_predictions(cfg, model, files, device)
    print(f"W-Net predictions + post-processing: {time.time() - t0:.0f}s")

    # -- benchmark every method in the same harness (baselines: cached between runs)
    rows, curves = {}, {}
    bench_dir = run_dir / "bench"
    for name in [*methods, *(f"baseline: {b}" for b in cfg.bsds.baselines)]:
        slug = name.lower().replace(" ", "_").replace(":", "").replace("+", "plus")
        out = bench_dir / slug.replace("(", "").replace(")", "")
        if name.startswith("baseline: "):
            base = name.removeprefix("baseline: ")
            cache = baseline_cache_dir(cfg, base, files)
            if not (cache / "summary.json").is_file():
                preds = baseline_predictions(cfg, files, base)
                bsds.evaluate_predictions(preds, gt_dir, cache, cfg.bsds.nthresh, cfg.bsds.workers or None)
            else:
                print(f"{name}: reusing cached scores from {cache}")
            shutil.copytree(cache, out, dirs_exist_ok=True)
            s = json.loads((out / "summary.json").read_text())
        else:
            s = bsds.evaluate_predictions(
                methods[name], gt_dir, out, cfg.bsds.nthresh, cfg.bsds.workers or None
            )
        rows[name] = s
        curves[name] = (*_read_thr(out / "eval_bdry_thr.txt"), s["bdry_ods_f"])
        print(f"{name}: " + " ".join(f"{c}={s[c]:.3f}" for c in COLUMNS) + f" ({s['seconds']:.0f}s)")

    # -- results
    meta = (
        f"BSDS500 {cfg.bsds.split}, {len(files)} images, nthresh={cfg.bsds.nthresh}; W-Net K={cfg.model.k}, "
        f"width {cfg.model.base_width}, trained {'(loaded ' + cfg.checkpoint + ')' if cfg.checkpoint else f'{cfg.train.iterations} iterations in {train_time:.0f}s'}; "
        f"CRF {cfg.crf.kind}, hierarchy {cfg.hierarchy.mode}; whole pipeline {(time.time() - start) / 60:.1f} min."
    )
    md, cs = write_tables(run_dir, rows, meta)
    pr_plot(run_dir / "bsds500_pr.png", curves)
    print(md.read_text())
    sink = WandbSink(cfg, run_dir, job_type="bsds")
    sink.table(
        "bsds500_results", ["method", *COLUMNS], [[n, *[s[c] for c in COLUMNS]] for n, s in rows.items()]
    )
    sink.image_file("bsds500_pr", run_dir / "bsds500_pr.png")
    sink.artifact(cs, name=f"{cfg.name}-bsds500-results".replace("/", "-"), type="results")
    sink.finish()
    return {"run_dir": str(run_dir), "rows": rows, "markdown": str(md), "csv": str(cs)}
