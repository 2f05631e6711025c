"""Unsupervised W-Net vs supervised U-Nets under one budget, scored by one evaluator on every split.

    python experiments/run.py --config experiments/configs/compare_camvid.yaml data.root=/path/to/CamVid

Every method trains on the same images, resolution, iteration budget and seed: W-Net through
``wnet.tasks.unsupervised`` (labels unused) and one supervised U-Net per loss in
``compare.losses`` through ``wnet.tasks.supervised`` (final weights: no model selection). All
are then scored on ``data.eval_split`` and, when ``data.heldout`` names training files to hold
out, on the split ``heldout`` that no method trained on, by ``wnet.evaluation.evaluate_labelled``
(W-Net clusters Hungarian-matched to classes on each split's confusion matrix), with the
positional kappa of every method's label maps next to that of the ground truth. Sub-runs live in
``<run>/<method>/``; the comparison writes ``comparison.md``, ``comparison.csv`` (one row per
method and split), ``per_class_iou_<split>.png`` and ``grid_<split>.png`` into ``<run>/``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from wnet import metrics, visualize
from wnet.evaluation import evaluate_labelled, scores_row
from wnet.inference import predict, predict_labels
from wnet.postprocess import CRFParams, refine
from wnet.tasks import supervised, unsupervised
from wnet.tasks.build import HELDOUT, build_labelled, ignore_index
from wnet.tasks.compare_tables import COLUMNS, table_rows, write_tables
from wnet.tasks.config import Config
from wnet.tasks.errors import ConfigError, InputError
from wnet.tasks.folders import discard_unused, make_run_dir
from wnet.tasks.wandb_sink import WandbSink

KAPPA_IMAGES = 128  # label maps per split for the positional kappa (spread evenly; 8128 pairs at most)


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


def eval_splits(cfg: Config) -> list[str]:
    """The splits every method is scored on: ``data.eval_split``, then ``heldout`` when ``data.heldout`` is set."""
    return list(dict.fromkeys([cfg.data.eval_split, *([HELDOUT] if cfg.data.heldout else [])]))


def wnet_predict_fn(model, amp: str, crf_params: CRFParams):
    """Labels of a trained W-Net: U_Enc soft classes, the CRF (``crf_params.kind``, may be none), argmax.

    Shape: (B, C, H, W) images -> (B, H, W) cluster ids on the CPU.
    """

    def fn(x: torch.Tensor) -> torch.Tensor:
        probs, _ = predict(model, x, amp)  # (B, K, H, W)
        return refine(probs.cpu(), x.cpu(), crf_params).argmax(1)  # kind none: probs as they are

    return fn


@dataclasses.dataclass
class Trained:
    """A trained segmenter: its row name, loss, training time, labels ``fn`` and clusters (None: classes)."""

    method: str
    loss: str
    train_time: float
    fn: Callable[[torch.Tensor], torch.Tensor]
    num_clusters: int | None = None


def train_wnet(cfg: Config, run_dir: Path) -> list[Trained]:
    """Train W-Net on the training images (labels unused): the ``wnet`` segmenter, plus ``wnet+crf``
    (after ``wnet.postprocess.crf.refine``) when ``cfg.crf.kind != 'none'``."""
    sub = sub_config(cfg, "wnet", run_dir)
    out = unsupervised.main(sub)
    variants = [("wnet", "none")] + ([("wnet+crf", cfg.crf.kind)] if cfg.crf.kind != "none" else [])
    return [
        Trained(
            method,
            "ncut+recon" + (f", {kind} CRF" if kind != "none" else ""),
            out["train_time"],
            wnet_predict_fn(out["model"], sub.train.amp, dataclasses.replace(sub.crf, kind=kind)),
            sub.model.k,
        )  # fmt: skip
        for method, kind in variants
    ]


def train_supervised(cfg: Config, loss: str, run_dir: Path) -> Trained:
    """Train one supervised U-Net with ``loss``; the segmenter of its final weights."""
    sub = sub_config(cfg, loss, run_dir)
    out = supervised.main(sub)
    model, binary = out["model"], out["mode"] == "binary"
    name = loss + (" (class-weighted)" if sub.supervised.class_weights else "")
    return Trained(
        f"unet-{loss}", name, out["train_time"], lambda x: predict_labels(model, x, binary, sub.train.amp)
    )


def score(t: Trained, split: str, dataset, ign, batch_size: int) -> dict:
    """One segmenter on one split: scores (W-Net clusters matched on this split), positional kappas,
    and ``predict``: class ids (unmatched clusters -> C, drawn as the ignore colour)."""
    C = dataset.num_classes
    ev = evaluate_labelled(
        t.fn, dataset, C, ign, num_clusters=t.num_clusters, batch_size=batch_size,
        desc=f"{t.method} {split}", kappa_images=KAPPA_IMAGES,
    )  # fmt: skip

    def predict(x, fn=t.fn, mapping=ev["mapping"]):
        return fn(x) if mapping is None else metrics.remap_labels(fn(x), mapping, unassigned=C)

    return {"method": t.method, "loss": t.loss, "split": split, "train_time": t.train_time, "eval": ev,
            "predict": predict}  # fmt: skip


# ----------------------------------------------------------------------------- pictures
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


def pictures(
    cfg: Config, run_dir: Path, results: list[dict], sets: dict, class_names: list[str]
) -> list[str]:
    """``per_class_iou_<split>.png`` and ``grid_<split>.png`` for every split; returns the file names."""
    first = next(iter(sets.values()))
    palette = getattr(first, "palette", None)
    palette = visualize.palette(first.num_classes) if palette is None else palette
    names = []
    for split, dataset in sets.items():
        mine = [r for r in results if r["split"] == split]
        ious = {r["method"]: r["eval"]["scores"]["iou"] for r in mine}
        chart, grid = f"per_class_iou_{split}.png", f"grid_{split}.png"
        visualize.bar_chart(
            run_dir / chart, ious, class_names, "IoU", f"Per-class IoU on the split '{split}'"
        )
        image_grid(run_dir / grid, mine, dataset, palette, cfg.compare.num_grid_images, ignore_index(cfg))
        names += [chart, grid]
    return names


# ----------------------------------------------------------------------------- main
def header(cfg: Config, sets: dict) -> str:
    """The first paragraph of ``comparison.md``: data, splits, budget, and how the rows were scored."""
    d, t = cfg.data, cfg.train
    C = next(iter(sets.values())).num_classes
    where = ", ".join(
        f"`{s}` ({len(ds)} images" + (f"; training files matching {d.heldout}, trained on by no method)" if s == HELDOUT else ")")
        for s, ds in sets.items()
    )  # fmt: skip
    return (
        f"Comparison `{cfg.name}` on {d.name} `{d.root}` ({C} classes), scored on {where}: {t.iterations} "
        f"iterations, batch {t.batch_size}, crop {d.image_size}, eval size {d.eval_size or 'full'}, base width "
        f"{cfg.model.base_width}, padding {cfg.model.padding}, seed {t.seed}. W-Net clusters are Hungarian-matched "
        "to classes on each whole split; supervised rows are the final weights (no model selection). Positional "
        f"kappa: label maps of up to {KAPPA_IMAGES} images per split compared pixel by pixel (wnet/positional.py), "
        "for the method and for the ground truth on the same images."
    )


def main(cfg: Config) -> dict:
    """Train every method, score them on every split, write the tables, charts and grids; returns the rows."""
    methods = (["wnet"] if cfg.compare.include_wnet else []) + list(cfg.compare.losses)
    if not methods:
        raise ConfigError(
            "compare: nothing to compare (compare.include_wnet=false and compare.losses is empty)"
        )
    sets = {s: build_labelled(cfg, s, train=False) for s in eval_splits(cfg)}  # before the run folder
    run_dir, cfg, lock = make_run_dir(cfg)
    with lock:  # the comparison's folder is its own for as long as it runs
        try:
            return compare(cfg, run_dir, methods, sets)
        except InputError:  # a data error found while training or scoring: leave no empty run folder
            discard_unused(run_dir)
            raise


def compare(cfg: Config, run_dir: Path, methods: list[str], sets: dict) -> dict:
    """Train and score every method in the claimed folder ``run_dir`` on every split of ``sets``;
    write the tables, chart and grid."""
    first = next(iter(sets.values()))
    C, ign = first.num_classes, ignore_index(cfg)
    class_names = getattr(first, "class_names", None) or [f"class {c}" for c in range(C)]
    print(f"compare: {', '.join(methods)} on {cfg.data.name} ({C} classes), splits {', '.join(sets)}")

    results = []
    for method in methods:
        print(f"\n===== {method} =====")
        trained = train_wnet(cfg, run_dir) if method == "wnet" else [train_supervised(cfg, method, run_dir)]
        for t in trained:
            for split, dataset in sets.items():
                r = score(t, split, dataset, ign, cfg.compare.eval_batch_size)
                results.append(r)
                s, ev = scores_row(r["eval"]["scores"]), r["eval"]
                print(
                    f"{t.method} on {split}: mIoU={s['miou']:.4f} pixel acc={s['pixel_accuracy']:.4f} "
                    f"positional kappa={ev['positional_kappa']:.3f} (labels {ev['labels_kappa']:.3f})"
                )

    rows = table_rows(results)
    write_tables(run_dir, rows, class_names, results, header(cfg, sets))
    files = pictures(cfg, run_dir, results, sets, class_names)
    print((run_dir / "comparison.md").read_text())
    print(f"wrote comparison.md, comparison.csv, {', '.join(files)} to {run_dir}")

    # -- W&B: the summary table and pictures, in the same group as the sub-runs
    cfg_log = copy.deepcopy(cfg)
    cfg_log.wandb.group = cfg.wandb.group or cfg.name
    sink = WandbSink(cfg_log, run_dir, job_type="compare")
    sink.table("comparison", COLUMNS, rows)
    iou_rows = [
        [r["method"], r["split"], *map(float, np.nan_to_num(r["eval"]["scores"]["iou"]))] for r in results
    ]
    sink.table("per_class_iou", ["method", "split", *class_names], iou_rows)
    for name in files:
        sink.image_file(name.removesuffix(".png"), run_dir / name)
    sink.finish()
    return {"run_dir": str(run_dir), "rows": rows, "columns": COLUMNS}
