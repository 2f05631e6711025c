"""Supervised baseline: a U-Net shaped like W-Net's U_Enc, trained on labelled masks with any library loss.

    python experiments/run.py task=supervised data.name=paired data.root=/path/to/CamVid \\
        data.classes_file=camvid data.ignore_index=11 supervised.loss=dice+ce

Same plumbing as the unsupervised trainer (``wnet.train``): run folder, ``log.jsonl``, atomic
``last.pt`` checkpoints, tqdm bars, optional W&B, an iteration budget (``train.iterations``).
Validation runs every epoch (or every ``train.eval_every`` steps) over the whole eval split with
``wnet.evaluation.evaluate_labelled``; the best model by mIoU is kept as ``best.pt``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.build import build_labelled, ignore_index
from data.classes import class_frequencies
from wnet.config import Config
from wnet.evaluation import evaluate_labelled, scores_row
from wnet.losses import LOSSES, get_loss, parse_spec
from wnet.model import SegmentationUNet
from wnet.runtime import (
    RunLog,
    autocast,
    build_optimizer,
    build_scheduler,
    check_finite,
    checkpoint_state,
    forever,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
    start_run,
)
from wnet.wandb_sink import WandbSink


# ----------------------------------------------------------------------------- builders
def resolve_mode(mode: str, loss_spec, num_classes: int) -> str:
    """'auto' -> 'binary' when C == 2 and every loss term has a binary form, else 'multiclass'."""
    if mode not in ("auto", "binary", "multiclass"):
        raise ValueError(f"supervised.mode must be auto, binary or multiclass, got {mode!r}")
    names = parse_spec(loss_spec)
    if mode == "binary" and num_classes != 2:
        raise ValueError(f"supervised.mode=binary needs 2 classes, the data has {num_classes}")
    if mode != "auto":
        return mode
    binary_ok = all("binary" in LOSSES[n].modes for n in names)
    return "binary" if num_classes == 2 and binary_ok else "multiclass"


def inverse_frequency_weights(dataset, num_classes: int, ignore: int | None) -> np.ndarray:
    """w_c = 1 / (C f_c) from the training masks' class frequencies f_c (0 for absent classes).

    Balanced data gives w = 1; the weighted pixel count of every present class is then equal.
    """
    _, freqs = class_frequencies(dataset, num_classes, ignore)  # (C,)
    w = np.zeros(num_classes)
    present = freqs > 0
    w[present] = 1.0 / (num_classes * freqs[present])
    return w


def build_loss(cfg: Config, mode: str, ignore: int | None, weight: np.ndarray | None) -> torch.nn.Module:
    """``get_loss(supervised.loss, mode=..., ignore_index=..., weight=..., **supervised.loss_kwargs)``."""
    kwargs = dict(cfg.supervised.loss_kwargs)
    kwargs.setdefault("mode", mode)
    if ignore is not None:
        kwargs.setdefault("ignore_index", ignore)
    if weight is not None:
        kwargs["weight"] = weight.tolist()
    return get_loss(cfg.supervised.loss, **kwargs)


def build_model(cfg: Config, num_classes: int, mode: str) -> SegmentationUNet:
    """U_Enc's architecture with C output channels (1 in binary mode)."""
    m = cfg.model
    out = 1 if mode == "binary" else num_classes
    return SegmentationUNet(m.in_channels, out, m.base_width, m.dropout, m.separable)


@torch.no_grad()
def predict_labels(model, x: torch.Tensor, mode: str, device, amp: str = "none") -> torch.Tensor:
    """Class ids (B, H, W) int64: argmax of the logits, or sigmoid > 0.5 (logit > 0) in binary mode."""
    model.eval()
    with autocast(device, amp):
        logits = model(x.to(device)).float()  # (B, C or 1, H, W)
    labels = (logits[:, 0] > 0).long() if mode == "binary" else logits.argmax(1)
    return labels.cpu()


def class_labels(dataset, num_classes: int, ignore: int | None) -> dict[int, str]:
    """{id: name} for W&B masks, from the class file when the dataset has one."""
    names = getattr(dataset, "class_names", None) or [f"class {c}" for c in range(num_classes)]
    out = dict(enumerate(names))
    if ignore is not None:
        out[ignore] = "ignore"
    return out


# ----------------------------------------------------------------------------- train / evaluate
def train_one_epoch(
    cfg, model, loss_fn, batches, optimizer, scheduler, device, state, log, until: int
) -> dict:
    """Optimisation steps from ``state['step']`` up to ``until`` (one epoch or ``eval_every``); mean loss."""
    model.train()
    total, count, window = 0.0, 0, 0.0
    bar = tqdm(total=until - state["step"], desc="train", dynamic_ncols=True, leave=False)
    while state["step"] < until:
        state["epoch"], batch = next(batches)
        x = batch["image"].to(device, non_blocking=True)  # (B, C_in, H, W)
        y = batch["label"].to(device, non_blocking=True)  # (B, H, W)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, cfg.train.amp):
            logits = model(x)  # (B, C or 1, H, W)
        logits = logits.float()
        loss = loss_fn(logits[:, 0] if state["mode"] == "binary" else logits, y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        state["step"] += 1
        value = loss.item()
        check_finite({"loss": value}, state["step"], state["run_dir"])
        total, count, window = total + value, count + 1, window + value
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}", epoch=state["epoch"])
        step = state["step"]
        if step % cfg.train.log_every == 0 or step == until:
            n = cfg.train.log_every if step % cfg.train.log_every == 0 else step % cfg.train.log_every
            lr = optimizer.param_groups[0]["lr"]
            log.log("train", step, echo=False, loss=window / n, lr=lr, epoch=state["epoch"])
            window = 0.0
    bar.close()
    return {"loss": total / max(count, 1)}


def evaluate(cfg: Config, model, dataset, num_classes: int, mode: str, device) -> dict:
    """Dataset-level confusion matrix over the eval split -> ``segmentation_scores`` (+ the matrix)."""
    ign = ignore_index(cfg)
    out = evaluate_labelled(
        lambda x: predict_labels(model, x, mode, device, cfg.train.amp),
        dataset,
        num_classes,
        ign,
        batch_size=cfg.train.batch_size if cfg.data.eval_size else 1,
    )
    return out


def log_images(cfg, model, dataset, mode, device, sink, labels: dict, step: int) -> None:
    """W&B overlays with both ``predictions`` and ``ground_truth`` masks for the first held-out images."""
    if not sink.active:
        return
    images, masks, names = [], [], []
    for i in range(min(cfg.train.num_samples, len(dataset))):
        item = dataset[i]
        pred = predict_labels(model, item["image"][None], mode, device, cfg.train.amp)[0].numpy()
        images.append((item["image"].permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8))
        masks.append({"predictions": (pred, labels), "ground_truth": (item["label"].numpy(), labels)})
        names.append(item["name"])
    sink.images("val/overlays", images, masks, step=step, captions=names)


# ----------------------------------------------------------------------------- main
def main(cfg: Config) -> dict:
    """Train one supervised U-Net; returns run_dir, model (last weights), train_time and scores."""
    run_dir, device = start_run(cfg)
    sink = WandbSink(cfg, run_dir)
    log = RunLog(run_dir, sink)
    print(f"run folder: {run_dir}  device: {device}  wandb: {'on' if sink.active else 'off'}")

    # -- data
    train_set = build_labelled(cfg, cfg.data.splits[0], train=True)
    val_set = build_labelled(cfg, cfg.data.eval_split, train=False)
    C, ign = train_set.num_classes, ignore_index(cfg)
    loader = DataLoader(
        train_set,
        batch_size=cfg.train.batch_size,
        shuffle=True,
        drop_last=len(train_set) >= cfg.train.batch_size,
        num_workers=cfg.data.num_workers,
        generator=torch.Generator().manual_seed(cfg.train.seed),
        persistent_workers=cfg.data.num_workers > 0,
    )
    print(f"data: {cfg.data.name} train={len(train_set)} val={len(val_set)} classes={C} ignore={ign}")

    # -- loss (class weights from the training masks, computed once)
    mode = resolve_mode(cfg.supervised.mode, cfg.supervised.loss, C)
    if cfg.supervised.class_weights not in ("", "inverse_frequency"):
        raise ValueError(
            f"supervised.class_weights must be '' or 'inverse_frequency', got {cfg.supervised.class_weights!r}"
        )
    weight = inverse_frequency_weights(train_set, C, ign) if cfg.supervised.class_weights else None
    loss_fn = build_loss(cfg, mode, ign, weight).to(device)
    print(
        f"loss: {loss_fn} mode={mode}"
        + (f" weights={np.round(weight, 3).tolist()}" if weight is not None else "")
    )

    # -- model, optimiser
    model = build_model(cfg, C, mode).to(device)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    scheduler = build_scheduler(cfg.optim, optimizer)
    print(
        f"model: U-Net out={1 if mode == 'binary' else C} width={cfg.model.base_width} "
        f"params={sum(p.numel() for p in model.parameters()):,}"
    )
    state = {"step": 0, "epoch": 0, "run_dir": run_dir, "mode": mode, "best_miou": -1.0, "best_step": 0}

    # -- resume
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume)
        model.load_state_dict(ckpt["models"]["unet"])
        optimizer.load_state_dict(ckpt["optimizers"]["unet"])
        scheduler.load_state_dict(ckpt["schedulers"]["unet"])
        set_rng_state(ckpt["rng"])
        state.update(
            step=ckpt["step"], best_miou=ckpt.get("best_miou", -1.0), best_step=ckpt.get("best_step", 0)
        )
        print(f"resumed from {cfg.resume} at step {state['step']}")

    def save(path, **extra):
        save_checkpoint(
            path,
            checkpoint_state(
                cfg,
                state["step"],
                {"unet": model},
                {"unet": optimizer},
                {"unet": scheduler},
                best_miou=state["best_miou"],
                best_step=state["best_step"],
                mode=mode,
                **extra,
            ),
        )

    # -- train loop: train up to the next validation point, validate, checkpoint
    every = cfg.train.eval_every or max(len(loader), 1)
    batches, t0, scores = forever(loader), time.time(), None
    while state["step"] < cfg.train.iterations:
        until = min(cfg.train.iterations, (state["step"] // every + 1) * every)
        train_one_epoch(cfg, model, loss_fn, batches, optimizer, scheduler, device, state, log, until)
        scores = evaluate(cfg, model, val_set, C, mode, device)["scores"]
        row = scores_row(scores)
        log.log("val", state["step"], **row)
        if row["miou"] > state["best_miou"]:
            state["best_miou"], state["best_step"] = row["miou"], state["step"]
            save(run_dir / "best.pt")
        save(run_dir / "last.pt")
    train_time = time.time() - t0

    # -- evaluate the final model, log per-class table and overlays
    if scores is None:  # resumed at the budget: nothing trained, score what we have
        scores = evaluate(cfg, model, val_set, C, mode, device)["scores"]
        save(run_dir / "last.pt")
    final = scores_row(scores)
    log.log("final", state["step"], **final, train_time=train_time, best_miou=state["best_miou"])
    labels = class_labels(train_set, C, ign)
    rows = [
        [
            labels[c],
            *(float(scores[k][c]) for k in ("iou", "dice", "recall", "precision")),
            int(scores["support"][c]),
        ]
        for c in range(C)
    ]
    sink.table(
        "val/per_class", ["class", "iou", "dice", "recall", "precision", "support"], rows, step=state["step"]
    )
    log_images(cfg, model, val_set, mode, device, sink, labels, state["step"])
    sink.summary({f"final/{k}": v for k, v in final.items()} | {"best/miou": state["best_miou"]})
    sink.finish()
    log.close()
    print(f"final mIoU={final['miou']:.4f} best mIoU={state['best_miou']:.4f} at step {state['best_step']}")
    return {
        "run_dir": str(run_dir),
        "model": model,
        "mode": mode,
        "train_time": train_time,
        "scores": scores,
        "final": final,
        "best_miou": state["best_miou"],
        "best_step": state["best_step"],
    }


if __name__ == "__main__":  # pragma: no cover - use experiments/run.py
    raise SystemExit("run `python experiments/run.py` instead")
