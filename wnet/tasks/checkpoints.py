"""Checkpoints: what they hold, durable writes, readable errors.

A checkpoint holds everything a resumed run needs to continue bit for bit on CPU: the models,
optimisers and schedulers, the step, the epoch and the position inside it, the task's own state,
every RNG (torch, CUDA, numpy, python) and the W&B run id; plus the resolved config.

Writes are durable: a temp file in the same folder is written, flushed and fsync'd, then renamed
over the old file (``os.replace`` is atomic), and the folder is fsync'd so the rename survives a
power cut. A crash at any point leaves the previous checkpoint loadable; a failed write (a full
disk) removes its temp file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from wnet.tasks.errors import CheckpointError, StorageError, shown

if TYPE_CHECKING:
    from wnet.tasks.config import Config


def rng_state() -> dict:
    """Every global RNG; numpy's as tensors and numbers, which ``torch.load(weights_only=True)`` reads."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    numpy = {
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": pos,
        "has_gauss": has_gauss,
        "cached": cached,
    }
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": numpy}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))  # the tuple may come back as a list
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state(
            ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
        )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` durably: temp file, flush + fsync, atomic rename, fsync of the folder.

    When the write fails (a full disk, a read-only or vanished folder, an interruption) the temp
    file is removed and the previous checkpoint is left as it was; an ``OSError`` becomes one
    line naming the file and the cause (:class:`StorageError`).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            kept = "the previous one is unchanged" if path.is_file() else "no earlier checkpoint exists"
            raise StorageError(f"cannot write checkpoint {shown(path)}: {e.strerror or e}; {kept}") from e
        raise
    _fsync_dir(path.parent)


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a run folder's ``last.pt``."""
    path = Path(path)
    return path / "last.pt" if path.is_dir() else path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`; a missing, truncated or foreign file
    raises :class:`CheckpointError` naming it."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, not a torch file, unsafe pickle, ...
        raise CheckpointError(
            f"checkpoint {path} cannot be read: it is truncated or not a checkpoint of this project "
            f"({type(e).__name__}: {str(e).splitlines()[0][:160]})"
        ) from None
    if not isinstance(ckpt, dict) or not {"models", "config", "step"} <= set(ckpt):
        raise CheckpointError(f"checkpoint {path} is a torch file but not a checkpoint of this project")
    return ckpt


def load_weights(module: torch.nn.Module, state: dict, path: str | Path, what: str) -> None:
    """``module.load_state_dict(state)``, with a one-line error instead of PyTorch's size dump."""
    try:
        module.load_state_dict(state)
    except RuntimeError:
        raise CheckpointError(f"checkpoint {path}: its {what} weights do not fit this architecture") from None


def checkpoint_state(
    cfg: Config, step: int, models: dict, optimizers: dict, schedulers: dict, **extra
) -> dict:
    """Everything needed to resume: weights, optimisers, schedulers, step, config and RNG state."""
    return {
        "step": step,
        "config": dataclasses.asdict(cfg),
        "models": {k: m.state_dict() for k, m in models.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
        "rng": rng_state(),
        **extra,
    }
