"""Data parallelism: the process group, who writes, and the reductions that keep scores exact.

Launch with ``torchrun --nproc_per_node=N experiments/run.py ...`` (or ``srun`` under SLURM);
a plain ``python experiments/run.py`` is a world of one and none of this does anything.

* The group comes from torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``, or from SLURM's
  ``SLURM_PROCID`` / ``SLURM_NTASKS`` / ``SLURM_LOCALID`` (``MASTER_ADDR`` defaults to the job's
  first node, ``MASTER_PORT`` to 29500); gloo on CPU, nccl on CUDA, one device per local rank.
* Only rank 0 writes (run folder, log, checkpoints, samples, W&B); the other ranks print nothing
  but errors.
* ``train.batch_size`` is the batch of one process; the global batch is ``batch_size * world``.
  The soft N-Cut is a per-image quantity, so data parallelism leaves its mathematics unchanged:
  DDP averages the per-rank gradients of per-rank means, which is the gradient of the mean over
  the global batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in the group."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def _slurm_env() -> None:
    """Fill torchrun's variables from SLURM's when launched by ``srun`` without torchrun."""
    if "RANK" in os.environ or "SLURM_PROCID" not in os.environ or int(os.environ.get("SLURM_NTASKS", 1)) < 2:
        return
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    if "MASTER_ADDR" not in os.environ:
        nodes = os.environ.get("SLURM_JOB_NODELIST", os.environ.get("SLURM_NODELIST", "localhost"))
        first = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True, text=True)
        os.environ["MASTER_ADDR"] = (
            first.stdout.split()[0] if first.returncode == 0 and first.stdout else "localhost"
        )
    os.environ.setdefault("MASTER_PORT", "29500")


def init(device_name: str = "auto") -> Dist:
    """Join the process group described by the environment (no-op for a single process)."""
    _slurm_env()
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world < 2:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    info = Dist(rank, local, world)
    if not info.main:  # the other ranks print nothing but errors
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        os.environ["TQDM_DISABLE"] = "1"
        warnings.simplefilter("ignore")
    return info


def current() -> Dist:
    """The group this process belongs to (a world of one when not initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    return Dist(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())


def device(d: Dist, name: str) -> torch.device | None:
    """The device of this local rank under CUDA (``cuda:LOCAL_RANK``); None elsewhere (pick as usual)."""
    if d.active and (name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())):
        return torch.device("cuda", d.local_rank)
    return None


def broadcast(obj, src: int = 0):
    """``obj`` of rank ``src`` on every rank (e.g. the run folder rank 0 chose)."""
    if not current().active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def sync_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank, in place (what DDP's constructor does).

    Each rank seeds its RNGs with ``train.seed + rank``, so freshly built models differ between
    ranks until then; anything that reads the weights before the step wraps the model (the
    step-0 evaluation) must see the weights every rank will train."""
    if not current().active:
        return
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=src)


def all_sum(values):
    """Element-wise sum over ranks of a number, a numpy array or a tensor (float64 / int64 kept exact)."""
    if not current().active:
        return values
    t = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values)
    t = t.to(torch.float64 if t.is_floating_point() else torch.int64).clone()
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    t = t.cpu()
    if torch.is_tensor(values):
        return t.to(values.dtype)
    return t.numpy().astype(np.asarray(values).dtype) if np.ndim(values) else t.item()


def gather(obj) -> list | None:
    """Every rank's ``obj`` as a list on rank 0 (None on the other ranks); ``[obj]`` in a world of one."""
    d = current()
    if not d.active:
        return [obj]
    out = [None] * d.world_size if d.main else None
    dist.gather_object(obj, out, dst=0)
    return out


def gather_dicts(part: dict) -> dict:
    """Rank 0 gets the union of every rank's dict; the other ranks get an empty dict."""
    d = current()
    if not d.active:
        return part
    parts = [None] * d.world_size if d.main else None
    dist.gather_object(part, parts, dst=0)
    return {k: v for p in parts for k, v in p.items()} if d.main else {}


def barrier() -> None:
    if current().active:
        dist.barrier()


def shard(items: list, d: Dist | None = None) -> list:
    """This rank's share of a list (``items[rank::world]``; no padding, so nothing is counted twice)."""
    d = d or current()
    return items[d.rank :: d.world_size]


def wrap(module: torch.nn.Module, d: Dist, sync_bn: bool = False) -> torch.nn.Module:
    """``DistributedDataParallel(module)`` when the group has several processes, else ``module``.

    ``sync_bn`` (CUDA only) first turns its BatchNorm layers into SyncBatchNorm in place (the same
    parameters), so that batch statistics are taken over the global batch. Without it, each rank
    normalises with its own batch statistics, and DDP broadcasts rank 0's running statistics.
    """
    if not d.active:
        return module
    if sync_bn:
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    on_cuda = next(module.parameters()).is_cuda
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=[d.local_rank] if on_cuda else None)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
