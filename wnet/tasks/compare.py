"""Unsupervised W-Net vs supervised U-Nets under one budget, scored by one evaluator.

    python experiments/run.py --config experiments/configs/compare_camvid.yaml data.root=/path/to/CamVid

Every method trains on the same images, resolution, iteration budget and seed: W-Net through
``wnet.tasks.unsupervised`` (labels unused) and one supervised U-Net per loss in
``compare.losses`` through ``wnet.tasks.supervised``. All are then scored on ``data.eval_split`` by
``wnet.evaluation.evaluate_labelled`` (W-Net clusters Hungarian-matched to classes on the split's
confusion matrix). Sub-runs live in ``<run>/<method>/``; the comparison writes ``comparison.md``,
``comparison.csv``, ``per_class_iou.png`` and ``grid.png`` into ``<run>/``.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
from pathlib import Path

import numpy as np
import torch

from wnet import metrics, visualize
from wnet.evaluation import evaluate_labelled, scores_row
from wnet.inference import predict, predict_labels
from wnet.postprocess import CRFParams, refine
from wnet.tasks import supervised, unsupervised
from wnet.tasks.build import build_labelled, ignore_index
from wnet.tasks.config import Config
from wnet.tasks.errors import ConfigError
from wnet.tasks.folders import make_run_dir
from wnet.tasks.wandb_sink import WandbSink

COLUMNS = [
    "method",
    "loss",
    "pixel_accuracy",
    "mean_pixel_accuracy",
    "miou",
    "fwiou",
    "mean_dice",
    "train_time_s",
]


# ----------------------------------------------------------------------------- sub-run configs
def sub_config(cfg: Config, method: str, run_dir: Path) -> Config:
    """A copy of ``cfg`` for one method, living in ``<run_dir>/<method>`` and in the compare W&B group."""
    sub = copy.deepcopy(cfg)
    sub.out_dir, sub.name = str(run_dir.parent), f"{run_dir.name}/{method}"
    sub.wandb.group = cfg.wandb.group or cfg.name
    sub.resume = ""
    if method == "wnet":
        sub.task = "unsupervised"
    else:
        sub.task = "supervised"
        sub.supervised.loss = method
        if method in cfg.compare.weighted:
            sub.supervised.class_weights = "inverse_frequency"
    return sub


def wnet_predict_fn(model, amp: str, crf_params: CRFParams):
    """Labels of a trained W-Net: U_Enc soft classes, the CRF (``crf_params.kind``, may be none), argmax.

    Shape: (B, C, H, W) images -> (B, H, W) cluster ids on the CPU.
    """

    def fn(x: torch.Tensor) -> torch.Tensor:
        probs, _ = predict(model, x, amp)  # (B, K, H, W)
        return refine(probs.cpu(), x.cpu(), crf_params).argmax(1)  # kind none: probs as they are

    return fn


def run_wnet(cfg: Config, run_dir: Path, val_set, C: int, ign) -> list[dict]:
    """Train W-Net on the training images (labels unused); score its clusters after Hungarian matching.

    Returns one result, plus a second one (``wnet+crf``) scored after ``wnet.postprocess.crf.refine`` when
    ``cfg.crf.kind != 'none'``; each gets its own matching on its own confusion matrix.
    """
    sub = sub_config(cfg, "wnet", run_dir)
    out = unsupervised.main(sub)
    variants = [("wnet", "none")] + ([("wnet+crf", cfg.crf.kind)] if cfg.crf.kind != "none" else [])
    results = []
    for method, kind in variants:
        fn = wnet_predict_fn(out["model"], sub.train.amp, dataclasses.replace(sub.crf, kind=kind))
        ev = evaluate_labelled(
            fn, val_set, C, ign, num_clusters=sub.model.k, batch_size=cfg.compare.eval_batch_size, desc=method
        )

        def predict(x, fn=fn, mapping=ev["mapping"]):  # class ids; unmatched clusters -> C (ignore colour)
            return metrics.remap_labels(fn(x), mapping, unassigned=C)

        loss = "ncut+recon" + (f", {kind} CRF" if kind != "none" else "")
        results.append(
            {"method": method, "loss": loss, "train_time": out["train_time"], "eval": ev, "predict": predict}
        )
    return results


def run_supervised(cfg: Config, loss: str, run_dir: Path, val_set, C: int, ign) -> dict:
    """Train one supervised U-Net with ``loss``; score its final weights on the eval split."""
    sub = sub_config(cfg, loss, run_dir)
    out = supervised.main(sub)
    model, binary = out["model"], out["mode"] == "binary"

    def predict(x):
        return predict_labels(model, x, binary, sub.train.amp)

    ev = evaluate_labelled(predict, val_set, C, ign, batch_size=cfg.compare.eval_batch_size)
    name = loss + (" (class-weighted)" if sub.supervised.class_weights else "")
    return {
        "method": f"unet-{loss}",
        "loss": name,
        "train_time": out["train_time"],
        "eval": ev,
        "predict": predict,
    }


# ----------------------------------------------------------------------------- outputs
def table_rows(results: list[dict]) -> list[list]:
    rows = []
    for r in results:
        s = scores_row(r["eval"]["scores"])
        rows.append([r["method"], r["loss"], *(s[k] for k in COLUMNS[2:-1]), r["train_time"]])
    return rows


def write_tables(
    run_dir: Path, rows: list[list], class_names: list[str], results: list[dict], header: str
) -> None:
    """``comparison.csv`` (one row per method) and ``comparison.md`` (scores, then per-class IoU)."""
    with open(run_dir / "comparison.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows([[*r[:2], *(f"{v:.4f}" for v in r[2:-1]), f"{r[-1]:.1f}"] for r in rows])
    names = [
        "method",
        "loss",
        "pixel acc.",
        "mean pixel acc.",
        "mIoU",
        "FWIoU",
        "mean Dice",
        "train time (s)",
    ]
    lines = [header, "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += [
        f"| {r[0]} | {r[1]} | " + " | ".join(f"{v:.4f}" for v in r[2:-1]) + f" | {r[-1]:.0f} |" for r in rows
    ]
    lines += ["", "Per-class IoU:", "", "| method | " + " | ".join(class_names) + " |"]
    lines += ["|" + "---|" * (len(class_names) + 1)]
    for r in results:
        iou = r["eval"]["scores"]["iou"]
        lines.append(
            f"| {r['method']} | " + " | ".join("n/a" if np.isnan(v) else f"{v:.3f}" for v in iou) + " |"
        )
    (run_dir / "comparison.md").write_text("\n".join(lines) + "\n")


def image_grid(path: Path, results: list[dict], val_set, palette: np.ndarray, n: int, ign) -> None:
    """Rows of image | ground truth | each method, coloured with the class palette (ignore: black).

    The rows are ``n`` images spread evenly over the split (neighbouring video frames look alike).
    """
    rows = []
    for i in np.unique(np.linspace(0, len(val_set) - 1, min(n, len(val_set))).round().astype(int)):
        item = val_set[int(i)]
        gt = item["label"].numpy().copy()
        if ign is not None:
            gt[gt == ign] = len(palette)  # ignore -> the black 'no class' colour
        tiles = [visualize.to_uint8_rgb(item["image"]), visualize.colorize(gt, colours=palette)]
        for r in results:
            pred = torch.as_tensor(r["predict"](item["image"][None]))[0].numpy()
            tiles.append(visualize.colorize(pred, colours=palette))
        rows.append(tiles)
    visualize.titled_grid(path, rows, ["image", "ground truth", *(r["method"] for r in results)])


# ----------------------------------------------------------------------------- main
def main(cfg: Config) -> dict:
    """Train every method, score them on one split, write the tables, chart and grid; returns the rows."""
    methods = (["wnet"] if cfg.compare.include_wnet else []) + list(cfg.compare.losses)
    if not methods:
        raise ConfigError(
            "compare: nothing to compare (compare.include_wnet=false and compare.losses is empty)"
        )
    val_set = build_labelled(cfg, cfg.data.eval_split, train=False)
    run_dir, cfg, lock = make_run_dir(cfg)
    with lock:  # the comparison's folder is its own for as long as it runs
        return compare_methods(cfg, run_dir, methods, val_set)


def compare_methods(cfg: Config, run_dir: Path, methods: list[str], val_set) -> dict:
    """Train and score every method in the claimed folder ``run_dir``; write the tables, chart and grid."""
    C, ign = val_set.num_classes, ignore_index(cfg)
    class_names = getattr(val_set, "class_names", None) or [f"class {c}" for c in range(C)]
    palette = getattr(val_set, "palette", None)
    palette = visualize.palette(C) if palette is None else palette
    print(f"compare: {', '.join(methods)} on {cfg.data.name} ({C} classes), eval split {cfg.data.eval_split}")

    results = []
    for method in methods:
        print(f"\n===== {method} =====")
        new = (
            run_wnet(cfg, run_dir, val_set, C, ign)
            if method == "wnet"
            else [run_supervised(cfg, method, run_dir, val_set, C, ign)]
        )
        results.extend(new)
        for r in new:
            s = scores_row(r["eval"]["scores"])
            print(f"{r['method']}: mIoU={s['miou']:.4f} pixel acc={s['pixel_accuracy']:.4f}")

    rows = table_rows(results)
    d, t = cfg.data, cfg.train
    header = (
        f"Comparison `{cfg.name}` on {d.name} `{d.root}` (eval split `{d.eval_split}`, {len(val_set)} images, "
        f"{C} classes): {t.iterations} iterations, batch {t.batch_size}, crop {d.image_size}, "
        f"eval size {d.eval_size or 'full'}, base width {cfg.model.base_width}, seed {t.seed}. "
        "W-Net clusters are Hungarian-matched to classes on the whole split; supervised rows are the final weights."
    )
    write_tables(run_dir, rows, class_names, results, header)
    ious = {r["method"]: r["eval"]["scores"]["iou"] for r in results}
    title = "Per-class IoU on the evaluation split"
    visualize.bar_chart(run_dir / "per_class_iou.png", ious, class_names, "IoU", title)
    image_grid(run_dir / "grid.png", results, val_set, palette, cfg.compare.num_grid_images, ign)
    print((run_dir / "comparison.md").read_text())
    print(f"wrote comparison.md, comparison.csv, per_class_iou.png, grid.png to {run_dir}")

    # -- W&B: the summary table and pictures, in the same group as the sub-runs
    cfg_log = copy.deepcopy(cfg)
    cfg_log.wandb.group = cfg.wandb.group or cfg.name
    sink = WandbSink(cfg_log, run_dir, job_type="compare")
    sink.table("comparison", COLUMNS, rows)
    iou_rows = [[r["method"], *map(float, np.nan_to_num(r["eval"]["scores"]["iou"]))] for r in results]
    sink.table("per_class_iou", ["method", *class_names], iou_rows)
    sink.image_file("per_class_iou_chart", run_dir / "per_class_iou.png")
    sink.image_file("grid", run_dir / "grid.png")
    sink.finish()
    return {"run_dir": str(run_dir), "rows": rows, "columns": COLUMNS}
