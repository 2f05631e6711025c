"""``task=unsupervised``: W-Net training, the paper's Algorithm 1 as a step of the shared loop.

The step itself (``train.mode``: alternating, the paper's, or joint) is in :mod:`wnet.tasks.steps`;
this module builds the model and its optimisers, scores the held-out images (N-Cut,
reconstruction, matched scores when labels exist, the positional kappa) and writes samples.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from wnet import metrics, visualize
from wnet.evaluation import same_size_batches, score_confusion
from wnet.inference import predict
from wnet.model import WNet
from wnet.positional import TILING_KAPPA, positional_kappa
from wnet.tasks import distributed
from wnet.tasks.build import (
    LABELLED,
    build_optimizer,
    build_scheduler,
    build_unlabelled,
    build_wnet,
    eval_batch_size,
    ignore_index,
)
from wnet.tasks.checkpoints import rng_state, set_rng_state
from wnet.tasks.config import Config
from wnet.tasks.errors import writing
from wnet.tasks.loaders import train_loader
from wnet.tasks.loop import Parts, TrainState, checkpoint, resume, train_loop
from wnet.tasks.runtime import Run, open_run
from wnet.tasks.steps import TRAIN_MODES, ncut_loss, wnet_step


def build_parts(cfg: Config, device: torch.device) -> Parts:
    """The W-Net and the optimisers of its training mode (``enc``: U_Enc alone, ``all``: everything)."""
    model = build_wnet(cfg.model).to(device)
    params = {"enc": model.u_enc.parameters, "all": model.parameters}
    optimizers = {k: build_optimizer(cfg.optim, params[k]()) for k in TRAIN_MODES[cfg.train.mode].optimizers}
    schedulers = {k: build_scheduler(cfg.optim, o, cfg.train.iterations) for k, o in optimizers.items()}
    return Parts({"wnet": model}, optimizers, schedulers)


# ----------------------------------------------------------------------------- held-out scores
@torch.no_grad()
def heldout_scores(cfg: Config, model: WNet, dataset) -> dict:
    """Held-out N-Cut and reconstruction losses; with label maps, per-image Hungarian-matched scores.

    Procedural label maps are per-image region ids (no shared classes), so clusters are matched
    to regions image by image (``metrics.match_clusters`` on each image's confusion matrix).
    Semantic datasets (paired, voc) are scored as ``task=compare`` scores W-Net: one Hungarian
    matching on the split's confusion matrix (``wnet.evaluation.score_confusion``), so that a
    sweep can maximise the matched mIoU. Under data parallelism each rank scores its share of the
    images and the sums (and confusion matrices) are added over ranks.
    """
    j_sum = r_sum = 0.0
    acc, miou, n, maps = [], [], 0, []
    d = distributed.current()
    part = Subset(dataset, distributed.shard(list(range(len(dataset))), d)) if d.active else dataset
    semantic = cfg.data.name in LABELLED  # (C, K) counts over the split
    split_cm = (
        metrics.ConfusionMatrix(dataset.num_classes, ignore_index(cfg), cfg.model.k) if semantic else None
    )
    for _, batch in same_size_batches(part, eval_batch_size(cfg)):  # photos of any size
        x = batch["image"]
        probs, recon = predict(model, x, cfg.train.amp)
        x = x.to(probs.device)
        j_sum += ncut_loss(cfg.ncut, probs, x).item() * len(x)
        r_sum += F.mse_loss(recon, x).item() * len(x)
        n += len(x)
        labels = probs.argmax(1).cpu()  # (B, H, W), shared by every score below
        maps += list(labels)[: POSITIONAL_IMAGES - len(maps)]  # (H, W) each
        if semantic:
            split_cm.update(labels, batch["label"])
        if "label" in batch and cfg.data.name == "procedural":
            for p, t in zip(labels.numpy(), batch["label"].numpy(), strict=True):
                cm = metrics.confusion_matrix(
                    p, t, num_classes=int(t.max()) + 1, num_pred_classes=cfg.model.k
                )
                s = metrics.segmentation_scores(metrics.match_clusters(cm)[1])
                acc.append(s["pixel_accuracy"])
                miou.append(s["miou"])
    if d.active:
        ok = [m for m in miou if not np.isnan(m)]
        j_sum, r_sum, n, a_sum, n_acc, m_sum, n_m = distributed.all_sum(
            [j_sum, r_sum, n, sum(acc), len(acc), sum(ok), len(ok)]
        )
        acc, miou = ([a_sum / n_acc], [m_sum / n_m if n_m else np.nan]) if n_acc else ([], [])
    out = {"ncut": j_sum / n, "recon": r_sum / n, **positional_score(maps, cfg.model.k, d)}
    if semantic:
        scores = score_confusion(distributed.all_sum(split_cm.cm), cfg.model.k)["scores"]
        acc, miou = [scores["pixel_accuracy"]], [scores["miou"]]
    if acc:
        out["matched_pixel_accuracy"] = float(np.mean(acc))
        out["matched_miou"] = float(np.nanmean(miou))
    return out


POSITIONAL_WARN = TILING_KAPPA  # kappa above this: most of the label map is explained by position alone
POSITIONAL_IMAGES = 16  # held-out label maps compared pairwise (120 pairs) for the positional kappa


def positional_score(maps: list[torch.Tensor], k: int, d) -> dict:
    """``{"positional_kappa": ...}`` over this rank's held-out maps (pairs weighted over ranks).

    About 0 when the segmentation follows content, 1 for a content-blind tiling
    (:func:`wnet.positional.positional_kappa`); absent with fewer than two held-out images.
    """
    kappa, pairs = positional_kappa(maps, k, POSITIONAL_IMAGES)
    total = kappa * pairs if pairs else 0.0
    if d.active:
        total, pairs = distributed.all_sum([total, pairs])
    return {"positional_kappa": total / pairs} if pairs else {}


def warn_if_positional(scores: dict) -> None:
    """Say so loudly when the held-out segmentation is mostly a content-blind tiling."""
    kappa = scores.get("positional_kappa", 0.0)
    if kappa > POSITIONAL_WARN:
        print(
            f"warning: held-out positional kappa {kappa:.2f} > {POSITIONAL_WARN}: different images get mostly "
            "the same label map, position by position (a content-blind tiling; see wnet/positional.py). "
            "Fewer classes (model.k), larger crops or model.padding=circular may help. Scenes that share a "
            "layout (streets) score above 0 by their labels too: task=compare prints both kappas."
        )


@torch.no_grad()
def write_samples(cfg: Config, model: WNet, dataset, run: Run, step: int) -> int:
    """PNG panels input | coloured segmentation | reconstruction for the first held-out images."""
    out_dir = run.dir / "samples"
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    images, masks, names = [], [], []
    for i in range(min(cfg.train.num_samples, len(dataset))):
        item = dataset[i]
        probs, recon = predict(model, item["image"][None], cfg.train.amp)
        seg = probs[0].argmax(0).cpu().numpy()
        rgb = visualize.to_uint8_rgb(item["image"])
        tiles = [rgb, visualize.colorize(seg, cfg.model.k), visualize.to_uint8_rgb(recon[0])]
        with writing(out_dir / f"{item['name']}.png"):  # a full disk: one line naming the file
            visualize.save_rgb(out_dir / f"{item['name']}.png", visualize.panel(tiles, min_height=192))
        images.append(rgb)
        masks.append({"predictions": (seg, {c: f"cluster {c}" for c in range(cfg.model.k)})})
        names.append(item["name"])
    run.sink.images("samples", images, masks, step=step, captions=names)
    return len(images)


# ----------------------------------------------------------------------------- train / main
def periodic_eval(run: Run, model: WNet, held_set, state) -> None:
    """Held-out scores every ``train.eval_every`` steps (the last step is scored by ``train``).

    The random state is put back afterwards, so that a run with periodic evaluation trains on the
    same random stream as one without (iterating a DataLoader draws a seed).
    """
    if state.step >= run.cfg.train.iterations:
        return
    saved = rng_state()
    run.log.log("eval", state.step, **heldout_scores(run.cfg, model, held_set))
    set_rng_state(saved)


def train(run: Run, data: tuple) -> dict:
    """Train a W-Net in an open run (``main``, or the BSDS pipeline's run) on ``(train set, held-out set)``."""
    cfg = run.cfg
    train_set, held_set = data
    loader = train_loader(cfg, train_set, run.dist.rank, run.dist.world_size)
    where = (
        f" (split {cfg.data.eval_split})" if cfg.data.name in LABELLED or cfg.data.name == "bsds500" else ""
    )
    print(f"data: {cfg.data.name} train={len(train_set)} held-out={len(held_set)}{where}")
    parts, state = build_parts(cfg, run.device), TrainState()
    model = parts.models["wnet"]
    params = sum(p.numel() for p in model.parameters())
    print(f"model: W-Net K={cfg.model.k} width={cfg.model.base_width} params={params:,}")
    resume(run, parts, state)
    distributed.sync_module(model)  # rank 0's weights on every rank before the step-0 evaluation

    before = heldout_scores(cfg, model, held_set) if state.step == 0 else None
    if before:
        run.log.log("eval", 0, **before)
    step_fn = wnet_step(cfg, model, parts.optimizers, run.device, run.dist)
    every = cfg.train.eval_every
    train_loop(run, parts, step_fn, loader, state, lambda s: periodic_eval(run, model, held_set, s), every)
    train_time = state.train_time  # over every sitting of a resumed run
    checkpoint(run, parts, state)

    after = heldout_scores(cfg, model, held_set)
    run.log.log("eval", state.step, **after, train_time=train_time)
    warn_if_positional(after)
    if run.dist.main:  # only rank 0 writes
        n = write_samples(cfg, model, held_set, run, state.step)
        print(f"wrote {n} sample panels to {run.dir / 'samples'}; checkpoint {run.dir / 'last.pt'}")
    run.sink.artifact(run.dir / "last.pt", name=f"{cfg.name}-wnet".replace("/", "-"))
    run.sink.summary({f"final/{k}": v for k, v in after.items()})
    return {
        "run_dir": str(run.dir),
        "before": before,
        "after": after,
        "train_time": train_time,
        "model": model,
    }


def main(cfg: Config) -> dict:
    data = build_unlabelled(cfg)  # before the run folder: a data error leaves nothing behind
    with open_run(cfg) as run:
        return train(run, data)
