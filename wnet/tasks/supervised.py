"""``task=supervised``: a U-Net shaped like W-Net's U_Enc, trained on labelled masks with any library loss.

    python experiments/run.py task=supervised data.name=paired data.root=/path/to/CamVid \\
        data.classes_file=camvid supervised.loss=dice+ce

Same loop as the unsupervised task (``wnet.tasks.loop``). Validation runs every epoch (or every
``train.eval_every`` steps) over a whole split with ``wnet.evaluation.evaluate_labelled``. With
``supervised.select_fraction > 0`` that split is ``select``, carved out of the training files, and the
best model by its mIoU is kept as ``best.pt``; without, it is ``data.eval_split`` (a learning curve
only: no model is chosen on the split that is reported, and no ``best.pt`` is written). The final
weights are scored on ``data.eval_split``, logged and printed under that split's name.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Subset

from wnet.evaluation import evaluate_labelled, score_confusion, scores_row
from wnet.inference import predict_labels
from wnet.tasks import distributed
from wnet.tasks.build import (
    SELECT,
    build_labelled,
    build_loss,
    build_optimizer,
    build_scheduler,
    build_unet,
    dataset_class_weights,
    eval_batch_size,
    ignore_index,
    supervised_mode,
)
from wnet.tasks.config import Config
from wnet.tasks.loaders import train_loader
from wnet.tasks.loop import Parts, TrainState, checkpoint, resume, train_loop
from wnet.tasks.runtime import Run, open_run
from wnet.tasks.steps import supervised_step


def class_labels(dataset, num_classes: int, ignore: int | None) -> dict[int, str]:
    """{id: name} for W&B masks, from the class file when the dataset has one."""
    names = getattr(dataset, "class_names", None) or [f"class {c}" for c in range(num_classes)]
    out = dict(enumerate(names))
    if ignore is not None:
        out[ignore] = "ignore"
    return out


def log_final(run: Run, model, dataset, scores: dict, binary: bool, labels: dict, step: int) -> None:
    """W&B: the per-class table, and overlays with ``predictions`` and ``ground_truth`` masks."""
    rows = [
        [
            labels[c],
            *(float(scores[k][c]) for k in ("iou", "dice", "recall", "precision")),
            int(scores["support"][c]),
        ]
        for c in range(len(scores["iou"]))
    ]
    split = run.cfg.data.eval_split
    run.sink.table(
        f"{split}/per_class", ["class", "iou", "dice", "recall", "precision", "support"], rows, step=step
    )
    if not run.sink.active:
        return
    images, masks, names = [], [], []
    for i in range(min(run.cfg.train.num_samples, len(dataset))):
        item = dataset[i]
        pred = predict_labels(model, item["image"][None], binary, run.cfg.train.amp)[0].numpy()
        images.append((item["image"].permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8))
        masks.append({"predictions": (pred, labels), "ground_truth": (item["label"].numpy(), labels)})
        names.append(item["name"])
    run.sink.images(f"{split}/overlays", images, masks, step=step, captions=names)


def build_parts(
    cfg: Config, train_set, C: int, ign: int | None, device
) -> tuple[Parts, torch.nn.Module, str]:
    """The loss (class weights from the training masks, computed once), the U-Net and its optimiser."""
    mode = supervised_mode(cfg.supervised.mode, cfg.supervised.loss, C)
    if cfg.supervised.class_weights not in ("", "inverse_frequency"):
        raise ValueError(
            f"supervised.class_weights must be '' or 'inverse_frequency', got {cfg.supervised.class_weights!r}"
        )
    weight = dataset_class_weights(train_set, C, ign) if cfg.supervised.class_weights else None
    loss_fn = build_loss(cfg, mode, ign, weight).to(device)
    weights = f" weights={np.round(weight, 3).tolist()}" if weight is not None else ""
    print(f"loss: {loss_fn} mode={mode}{weights}")
    out = 1 if mode == "binary" else C
    model = build_unet(cfg.model, out).to(device)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    params = sum(p.numel() for p in model.parameters())
    print(f"model: U-Net out={out} width={cfg.model.base_width} params={params:,}")
    return (
        Parts(
            {"unet": model},
            {"unet": optimizer},
            {"unet": build_scheduler(cfg.optim, optimizer, cfg.train.iterations)},
        ),
        loss_fn,
        mode,
    )


def load_data(cfg: Config) -> tuple:
    """(train set, eval set, selection set or None) of a labelled dataset."""
    d = cfg.data
    select = build_labelled(cfg, SELECT, train=False) if cfg.supervised.select_fraction else None
    return (
        build_labelled(cfg, d.splits[0], train=True),
        build_labelled(cfg, d.eval_split, train=False),
        select,
    )


def scorer(run: Run, model, binary: bool, C: int, ign: int | None):
    """``score(dataset) -> scores`` of the model's current weights on a whole split."""

    def score(dataset) -> dict:  # each rank scores its share; the confusion matrices are summed: exact
        idx = distributed.shard(list(range(len(dataset))), run.dist) if run.dist.active else None
        part = Subset(dataset, idx) if idx is not None else dataset
        cm = np.zeros((C, C), np.int64)
        if len(part):
            fn = lambda x: predict_labels(model, x, binary, run.cfg.train.amp)  # noqa: E731
            cm = evaluate_labelled(fn, part, C, ign, batch_size=eval_batch_size(run.cfg))["cm"]
        return score_confusion(distributed.all_sum(cm))["scores"]

    return score


def train(run: Run, data: tuple) -> dict:
    """Train one supervised U-Net in an open run; returns the model (last weights), train time and scores."""
    cfg, split = run.cfg, run.cfg.data.eval_split
    train_set, val_set, select_set = data
    C, ign = train_set.num_classes, ignore_index(cfg)
    loader = train_loader(cfg, train_set, run.dist.rank, run.dist.world_size)
    chosen = f" {SELECT}={len(select_set)} (picks best.pt)" if select_set is not None else ""
    print(
        f"data: {cfg.data.name} train={len(train_set)} {split}={len(val_set)}{chosen} classes={C} ignore={ign}"
    )

    parts, loss_fn, mode = build_parts(cfg, train_set, C, ign, run.device)
    model, binary = parts.models["unet"], mode == "binary"
    state = TrainState(extra={"best_miou": -1.0, "best_step": 0})
    resume(run, parts, state)
    score = scorer(run, model, binary, C, ign)
    latest = {}  # the last validation's scores (numpy arrays: not part of the checkpointed state)

    def eval_fn(st: TrainState) -> None:  # the selection split when there is one, else a learning curve
        latest["scores"] = score(select_set if select_set is not None else val_set)
        row = scores_row(latest["scores"])
        run.log.log(SELECT if select_set is not None else split, st.step, **row)
        if select_set is not None and row["miou"] > st.extra["best_miou"]:
            st.extra.update(best_miou=row["miou"], best_step=st.step)
            checkpoint(run, parts, st, "best.pt", mode=mode)

    every = cfg.train.eval_every or max(len(loader), 1)
    step_fn = supervised_step(cfg, model, loss_fn, parts.optimizers["unet"], run.device, binary, run.dist)
    train_loop(run, parts, step_fn, loader, state, eval_fn=eval_fn, eval_every=every, echo=False)
    train_time = state.train_time  # over every sitting of a resumed run
    fresh = select_set is None and latest.get("scores")  # the last learning-curve point is the final score
    scores = fresh or score(val_set)
    checkpoint(run, parts, state, mode=mode)
    return finish(run, (model, mode, train_set, val_set), scores, train_time, state.extra, state.step)


def finish(run: Run, parts: tuple, scores: dict, train_time: float, best: dict, step: int) -> dict:
    """Log, print and return the final weights' scores on ``data.eval_split`` (and the selection's best)."""
    (model, mode, train_set, val_set), split = parts, run.cfg.data.eval_split
    C, ign = train_set.num_classes, ignore_index(run.cfg)
    final = scores_row(scores)
    chosen = (
        {"best_miou": best["best_miou"], "best_step": best["best_step"]} if best["best_miou"] >= 0 else {}
    )
    run.log.log("final", step, eval_split=split, **final, train_time=train_time, **chosen)
    log_final(run, model, val_set, scores, mode == "binary", class_labels(train_set, C, ign), step)
    run.sink.summary(
        {f"final/{k}": v for k, v in final.items()} | {f"best/{k}": v for k, v in chosen.items()}
    )
    picked = (
        f"; best {SELECT} mIoU={best['best_miou']:.4f} at step {best['best_step']} (best.pt)"
        if chosen
        else ""
    )
    print(f"final weights on {split}: mIoU={final['miou']:.4f}{picked}")
    return {
        "run_dir": str(run.dir), "model": model, "mode": mode, "train_time": train_time, "scores": scores,
        "final": final, "eval_split": split, **chosen,
    }  # fmt: skip


def main(cfg: Config) -> dict:
    data = load_data(cfg)  # before the run folder: a data error leaves nothing behind
    with open_run(cfg) as run:
        return train(run, data)
