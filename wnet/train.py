"""Unsupervised W-Net training: the paper's Algorithm 1, as a readable loop.

Per batch (``train.mode=alternating``, Xia & Kulis 2017, Algorithm 1):
  1. forward U_Enc, soft N-Cut loss on its softmax, update U_Enc only;
  2. forward the whole W-Net, reconstruction loss (MSE), update U_Enc and U_Dec.
``train.mode=joint`` instead minimises ``ncut_weight * J + recon_weight * MSE`` in one step.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.build import LABELLED, build_labelled
from data.images import ImageFolder, bsds_files, list_images, unlabelled_transform
from data.procedural import ProceduralShapes
from wnet import metrics, visualize
from wnet.config import Config
from wnet.model import WNet
from wnet.ncut import ncut_features, soft_ncut_loss
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
def build_unlabelled_data(cfg: Config):
    """(train set, held-out set) for the unsupervised task; items carry ``image`` (and maybe ``label``)."""
    d, c = cfg.data, cfg.model.in_channels
    if d.name == "procedural":
        train = ProceduralShapes(d.num_images, d.image_size, cfg.train.seed, c, flip=d.flip)
        held = ProceduralShapes(d.num_eval_images, d.eval_size or d.image_size, cfg.train.seed + 1_000_003, c)
        return train, held
    train_tf = unlabelled_transform(d.image_size, True, d.flip, tuple(d.scale))
    eval_tf = unlabelled_transform(d.eval_size, False)
    if d.name == "bsds500":
        files = [f for split in d.splits for f in bsds_files(d.root, split)[0]]
        held_imgs, held_gts = bsds_files(d.root, d.eval_split)
        n = d.num_eval_images  # held-out images for losses and sample panels (the benchmark scores all)
        return ImageFolder(files, c, train_tf), ImageFolder(held_imgs[:n], c, eval_tf, gt_paths=held_gts[:n])
    if d.name in LABELLED:  # labelled data, labels unused for training (kept for evaluation)
        return build_labelled(cfg, d.splits[0], train=True), build_labelled(cfg, d.eval_split, train=False)
    if d.name == "folder":
        files = list_images(d.root)
        n_held = max(1, min(len(files) // 10, d.num_eval_images))  # last files are held out
        return ImageFolder(files[:-n_held] or files, c, train_tf), ImageFolder(files[-n_held:], c, eval_tf)
    raise ValueError(f"data.name={d.name!r} is not an unlabelled dataset; use procedural, folder or bsds500")


def build_wnet(cfg: Config) -> WNet:
    m = cfg.model
    return WNet(
        k=m.k, in_channels=m.in_channels, base_width=m.base_width, dropout=m.dropout, separable=m.separable
    )


def ncut_loss(cfg: Config, probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Soft N-Cut J of ``probs`` (B, K, H, W) on features of ``images`` (B, C, H, W) in [0, 1]."""
    n = cfg.ncut
    mode = n.features if images.shape[1] == 3 else "grey"  # grey images have only the grey feature
    feats = ncut_features(images, mode)  # (B, C', H, W) on the 0-255 scale
    return soft_ncut_loss(probs, feats, radius=n.radius, sigma_x=n.sigma_x, sigma_i=n.sigma_i)


# ----------------------------------------------------------------------------- one epoch
def train_steps(cfg, model, batches, optimizers, schedulers, device, state, log, until: int) -> dict:
    """Run optimisation steps from ``state['step']`` up to ``until``; returns mean losses of the steps."""
    model.train()
    opt_enc, opt_all = optimizers["enc"], optimizers["all"]
    sums, count = {"ncut": 0.0, "recon": 0.0}, 0
    window = {"ncut": 0.0, "recon": 0.0}
    bar = tqdm(total=until - state["step"], desc="train", dynamic_ncols=True, leave=False)
    while state["step"] < until:
        state["epoch"], batch = next(batches)
        x = batch["image"].to(device, non_blocking=True)  # (B, C, H, W) in [0, 1]
        if cfg.train.mode == "alternating":
            # (1) U_Enc alone on the soft N-Cut loss
            opt_enc.zero_grad(set_to_none=True)
            with autocast(device, cfg.train.amp):
                probs = torch.softmax(model.encode(x), dim=1)  # (B, K, H, W)
            j = ncut_loss(cfg, probs.float(), x)
            j.backward()
            opt_enc.step()
            # (2) the whole W-Net on reconstruction
            opt_all.zero_grad(set_to_none=True)
            with autocast(device, cfg.train.amp):
                _, recon = model(x)
            r = F.mse_loss(recon.float(), x)
            r.backward()
            opt_all.step()
        elif cfg.train.mode == "joint":
            opt_all.zero_grad(set_to_none=True)
            with autocast(device, cfg.train.amp):
                probs, recon = model(x)
            j = ncut_loss(cfg, probs.float(), x)
            r = F.mse_loss(recon.float(), x)
            (cfg.train.ncut_weight * j + cfg.train.recon_weight * r).backward()
            opt_all.step()
        else:
            raise ValueError(f"train.mode must be 'alternating' or 'joint', got {cfg.train.mode!r}")
        for name, s in schedulers.items():
            if name == "all" or cfg.train.mode == "alternating":  # joint mode never steps U_Enc's optimiser
                s.step()
        state["step"] += 1
        losses = {"ncut": j.item(), "recon": r.item()}
        check_finite(losses, state["step"], state["run_dir"])
        for k, v in losses.items():
            sums[k] += v
            window[k] += v
        count += 1
        bar.update(1)
        bar.set_postfix(ncut=f"{losses['ncut']:.4f}", recon=f"{losses['recon']:.4f}", epoch=state["epoch"])
        step = state["step"]
        if step % cfg.train.log_every == 0 or step == until:
            n = cfg.train.log_every if step % cfg.train.log_every == 0 else (step % cfg.train.log_every)
            lr = opt_all.param_groups[0]["lr"]
            log.log(
                "train", step, ncut=window["ncut"] / n, recon=window["recon"] / n, lr=lr, epoch=state["epoch"]
            )
            window = {"ncut": 0.0, "recon": 0.0}
        if step % cfg.train.ckpt_every == 0 and step < until:
            save_checkpoint(
                state["run_dir"] / "last.pt",
                checkpoint_state(cfg, step, {"wnet": model}, optimizers, schedulers),
            )
    bar.close()
    return {k: v / max(count, 1) for k, v in sums.items()}


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(model: WNet, x: torch.Tensor, cfg: Config, device: torch.device, pad: int = 0):
    """(probs (B, K, H, W) float32, recon (B, C, H, W) float32) in eval mode.

    ``pad`` > 0 mirrors the image by that many pixels on every side and crops the outputs back:
    the U-Nets' zero padding otherwise gives a band of border-specific classes along the frame of
    a full-resolution image (a spurious contour in a ucm2).
    """
    model.eval()
    x = x.to(device)
    h, w = x.shape[-2:]
    if pad:
        if not 0 < pad < min(h, w):
            raise ValueError(f"predict: pad={pad} must be >= 0 and smaller than the image size {h}x{w}")
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    with autocast(device, cfg.train.amp):
        probs, recon = model(x)
    if pad:
        probs, recon = probs[..., pad : pad + h, pad : pad + w], recon[..., pad : pad + h, pad : pad + w]
    return probs.float().contiguous(), recon.float().contiguous()


@torch.no_grad()
def evaluate(cfg: Config, model: WNet, dataset, device: torch.device) -> dict:
    """Held-out N-Cut and reconstruction losses; with label maps, per-image Hungarian-matched scores.

    Procedural label maps are per-image region ids (no shared classes), so clusters are matched
    to regions image by image (``metrics.match_clusters`` on each image's confusion matrix).
    Semantic datasets are scored with dataset-level matching by ``wnet.evaluation``.
    """
    loader = DataLoader(dataset, batch_size=1 if not cfg.data.eval_size else cfg.train.batch_size)
    j_sum = r_sum = 0.0
    acc, miou, n = [], [], 0
    for batch in loader:
        x = batch["image"].to(device)
        probs, recon = predict(model, x, cfg, device)
        j_sum += ncut_loss(cfg, probs, x).item() * len(x)
        r_sum += F.mse_loss(recon, x).item() * len(x)
        n += len(x)
        if "label" in batch and cfg.data.name == "procedural":
            pred = probs.argmax(1).cpu().numpy()
            for p, t in zip(pred, batch["label"].numpy(), strict=True):
                cm = metrics.confusion_matrix(
                    p, t, num_classes=int(t.max()) + 1, num_pred_classes=cfg.model.k
                )
                _, matched = metrics.match_clusters(cm)
                s = metrics.segmentation_scores(matched)
                acc.append(s["pixel_accuracy"])
                miou.append(s["miou"])
    out = {"ncut": j_sum / n, "recon": r_sum / n}
    if acc:
        out["matched_pixel_accuracy"] = float(np.mean(acc))
        out["matched_miou"] = float(np.nanmean(miou))
    return out


@torch.no_grad()
def write_samples(
    cfg: Config, model: WNet, dataset, device, out_dir: Path, sink: WandbSink | None, step: int
):
    """PNG panels input | coloured segmentation | reconstruction for the first held-out images."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images, masks, names = [], [], []
    for i in range(min(cfg.train.num_samples, len(dataset))):
        item = dataset[i]
        probs, recon = predict(model, item["image"][None], cfg, device)
        seg = probs[0].argmax(0).cpu().numpy()
        rgb = visualize.to_uint8_rgb(item["image"])
        tiles = [rgb, visualize.colorize(seg, cfg.model.k), visualize.to_uint8_rgb(recon[0])]
        visualize.save_rgb(out_dir / f"{item['name']}.png", visualize.panel(tiles, min_height=192))
        images.append(rgb)
        masks.append({"predictions": (seg, {c: f"cluster {c}" for c in range(cfg.model.k)})})
        names.append(item["name"])
    if sink is not None:
        sink.images("samples", images, masks, step=step, captions=names)
    return len(images)


# ----------------------------------------------------------------------------- main
def main(cfg: Config) -> dict:
    run_dir, device = start_run(cfg)
    sink = WandbSink(cfg, run_dir)
    log = RunLog(run_dir, sink)
    print(f"run folder: {run_dir}  device: {device}  wandb: {'on' if sink.active else 'off'}")

    # -- data
    train_set, held_set = build_unlabelled_data(cfg)
    g = torch.Generator().manual_seed(cfg.train.seed)
    loader = DataLoader(
        train_set,
        batch_size=cfg.train.batch_size,
        shuffle=True,
        drop_last=len(train_set) >= cfg.train.batch_size,
        num_workers=cfg.data.num_workers,
        generator=g,
        persistent_workers=cfg.data.num_workers > 0,
    )
    print(f"data: {cfg.data.name} train={len(train_set)} held-out={len(held_set)}")

    # -- model and optimisers (U_Enc alone for the N-Cut step; everything for reconstruction)
    model = build_wnet(cfg).to(device)
    optimizers = {"enc": build_optimizer(cfg.optim, model.u_enc.parameters())}
    optimizers["all"] = build_optimizer(cfg.optim, model.parameters())
    schedulers = {k: build_scheduler(cfg.optim, o) for k, o in optimizers.items()}
    print(
        f"model: W-Net K={cfg.model.k} width={cfg.model.base_width} params={sum(p.numel() for p in model.parameters()):,}"
    )
    state = {"step": 0, "epoch": 0, "run_dir": run_dir}

    # -- resume
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume)
        model.load_state_dict(ckpt["models"]["wnet"])
        for k, o in optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in schedulers.items():
            s.load_state_dict(ckpt["schedulers"][k])
        set_rng_state(ckpt["rng"])
        state["step"] = ckpt["step"]
        print(f"resumed from {cfg.resume} at step {state['step']}")

    # -- train
    t0 = time.time()
    before = evaluate(cfg, model, held_set, device) if state["step"] == 0 else None
    if before:
        log.log("eval", 0, **before)
    train_steps(cfg, model, forever(loader), optimizers, schedulers, device, state, log, cfg.train.iterations)
    train_time = time.time() - t0
    save_checkpoint(
        run_dir / "last.pt",
        checkpoint_state(cfg, state["step"], {"wnet": model}, optimizers, schedulers, train_time=train_time),
    )

    # -- evaluate, samples, artifact
    after = evaluate(cfg, model, held_set, device)
    log.log("eval", state["step"], **after, train_time=train_time)
    n = write_samples(cfg, model, held_set, device, run_dir / "samples", sink, state["step"])
    print(f"wrote {n} sample panels to {run_dir / 'samples'}; checkpoint {run_dir / 'last.pt'}")
    sink.artifact(run_dir / "last.pt", name=f"{cfg.name}-wnet".replace("/", "-"))
    sink.summary({f"final/{k}": v for k, v in after.items()})
    sink.finish()
    log.close()
    return {
        "run_dir": str(run_dir),
        "before": before,
        "after": after,
        "train_time": train_time,
        "model": model,
    }


if __name__ == "__main__":  # pragma: no cover - use experiments/run.py
    raise SystemExit("run `python experiments/run.py` instead")
