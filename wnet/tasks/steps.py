"""One optimisation step of each training task: what ``wnet.tasks.loop.train_loop`` calls per batch.

* W-Net (``task=unsupervised``), by ``train.mode`` (:data:`TRAIN_MODES`, the one table that
  validation and training both read):

  - ``alternating``, the paper's Algorithm 1 (Xia & Kulis 2017): (1) forward U_Enc, soft N-Cut
    loss on its softmax, update U_Enc only; (2) forward the whole W-Net, reconstruction loss
    (MSE), update U_Enc and U_Dec;
  - ``joint``: ``ncut_weight * J + recon_weight * MSE`` in one update of the whole W-Net.

* a supervised U-Net (``task=supervised``): logits, the library loss, update.

Under data parallelism the networks run inside DistributedDataParallel, so each backward
averages the gradients over ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F

from wnet.inference import autocast
from wnet.model import WNet
from wnet.ncut import image_ncut_loss
from wnet.tasks import distributed
from wnet.tasks.distributed import Dist

if TYPE_CHECKING:
    from wnet.tasks.config import Config, NCutConfig


def ncut_loss(n: NCutConfig, probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The ``ncut`` section's soft N-Cut J of ``probs`` (B, K, H, W) on ``images`` (B, C, H, W) in [0, 1]."""
    return image_ncut_loss(probs, images, n.radius, n.sigma_x, n.sigma_i, n.features)


# measured with experiments/bench_train.py (docs/performance.md); CUDA: not measured here yet
SPEED_DEFAULTS = {
    # CPU, measured with experiments/bench_train.py (docs/performance.md): channels-last gained
    # ~1.1x at the quick scale but lost (0.92x) at bsds500_cpu.yaml's, the scale CPU users train at;
    # torch.compile did not pay for its compile time in runs of this length
    "cpu": {"channels_last": False, "compile": False},
    # CUDA: not yet measured here (no GPU lent); channels-last is PyTorch's advice for conv nets under
    # bf16 autocast. experiments/gpu_check.sh measures both options on the first GPU lent
    "cuda": {"channels_last": True, "compile": False},
}


def speed_options(cfg: Config, device: torch.device) -> dict[str, bool]:
    """``train.channels_last`` / ``train.compile``, where null takes the device's measured default."""
    defaults = SPEED_DEFAULTS.get(device.type, {"channels_last": False, "compile": False})
    t = cfg.train
    return {k: defaults[k] if getattr(t, k) is None else getattr(t, k) for k in ("channels_last", "compile")}


def fast_modules(modules, d, cfg: Config, device: torch.device) -> list:
    """Each module in its training form: channels-last weights (in place), DDP-wrapped under torchrun,
    compiled; the returned callables are what the step runs (checkpoints keep the plain modules)."""
    opts = speed_options(cfg, device)
    out = []
    for m in modules:
        if opts["channels_last"]:
            m.to(memory_format=torch.channels_last)
        m = distributed.wrap(m, d, cfg.train.sync_bn)
        out.append(torch.compile(m) if opts["compile"] else m)
    return out


@dataclass
class _WNetStep:
    """What one W-Net step needs: the model, its (wrapped) U-Nets, the optimisers and the settings."""

    cfg: Config
    model: WNet
    enc: torch.nn.Module
    dec: torch.nn.Module
    optimizers: dict
    device: torch.device
    d: Dist

    def diverged(self, probs: torch.Tensor) -> bool:
        """Agreed by all ranks, so that none waits in a backward the others skip."""
        bad = float(not torch.isfinite(probs).all())
        return (distributed.all_sum(bad) if self.d.active else bad) > 0


def _alternating(s: _WNetStep, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    cfg, opt = s.cfg, s.optimizers
    # (1) U_Enc alone on the soft N-Cut loss
    opt["enc"].zero_grad(set_to_none=True)
    with autocast(s.device, cfg.train.amp):
        probs = torch.softmax(s.model.encode(x, s.enc), dim=1)  # (B, K, H, W)
    if s.diverged(probs):  # let the loop stop the run at this step
        return probs.new_tensor(float("nan")), probs.new_tensor(float("nan"))
    j = ncut_loss(cfg.ncut, probs.float(), x)
    j.backward()
    opt["enc"].step()
    # (2) the whole W-Net on reconstruction
    opt["all"].zero_grad(set_to_none=True)
    with autocast(s.device, cfg.train.amp):
        _, recon = s.model(x, s.enc, s.dec)
    r = F.mse_loss(recon.float(), x)
    r.backward()
    opt["all"].step()
    return j, r


def _joint(s: _WNetStep, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t, opt = s.cfg.train, s.optimizers
    opt["all"].zero_grad(set_to_none=True)
    with autocast(s.device, t.amp):
        probs, recon = s.model(x, s.enc, s.dec)
    if s.diverged(probs):
        return probs.new_tensor(float("nan")), probs.new_tensor(float("nan"))
    j, r = ncut_loss(s.cfg.ncut, probs.float(), x), F.mse_loss(recon.float(), x)
    (t.ncut_weight * j + t.recon_weight * r).backward()
    opt["all"].step()
    return j, r


class Mode(NamedTuple):
    """A W-Net training mode: its step, and the optimisers it steps (``enc``: U_Enc's parameters,
    ``all``: the whole W-Net's), in the order they are built and checkpointed."""

    step: object
    optimizers: tuple[str, ...]


TRAIN_MODES = {
    "alternating": Mode(_alternating, ("enc", "all")),  # the paper's Algorithm 1
    "joint": Mode(_joint, ("all",)),
}


def wnet_step(cfg: Config, model: WNet, optimizers: dict, device: torch.device, d: Dist | None = None):
    """One step of ``TRAIN_MODES[train.mode]`` on a batch; returns its two losses as floats."""
    d = d or Dist()
    enc, dec = fast_modules([model.u_enc, model.u_dec], d, cfg, device)
    layout = torch.channels_last if speed_options(cfg, device)["channels_last"] else torch.contiguous_format
    state, one_step = _WNetStep(cfg, model, enc, dec, optimizers, device, d), TRAIN_MODES[cfg.train.mode].step

    def step(batch: dict) -> dict[str, float]:
        x = (
            batch["image"].to(device, non_blocking=True).contiguous(memory_format=layout)
        )  # (B, C, H, W) in [0, 1]
        j, r = one_step(state, x)
        return {"ncut": j.item(), "recon": r.item()}

    return step


def supervised_step(cfg: Config, model, loss_fn, optimizer, device, binary: bool, d: Dist | None = None):
    """One supervised step: logits, loss (on the single logit map in binary mode), update."""
    (net,) = fast_modules([model], d or Dist(), cfg, device)
    layout = torch.channels_last if speed_options(cfg, device)["channels_last"] else torch.contiguous_format

    def step(batch: dict) -> dict[str, float]:
        x = batch["image"].to(device, non_blocking=True).contiguous(memory_format=layout)  # (B, C_in, H, W)
        y = batch["label"].to(device, non_blocking=True)  # (B, H, W)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, cfg.train.amp):
            logits = net(x)  # (B, C or 1, H, W)
        logits = logits.float()
        loss = loss_fn(logits[:, 0] if binary else logits, y)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    return step
