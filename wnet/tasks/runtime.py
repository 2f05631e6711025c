"""Run plumbing shared by every task: device, seeding, run folder, checkpoints, log.

Stdout plus ``<run>/log.jsonl`` are the source of truth; W&B (``wnet.tasks.wandb_sink``) is an
optional extra sink. Checkpoints are written atomically (temp file, then ``os.replace``) so a
crash never leaves a half-written file, and loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wnet.tasks.config import Config, config_to_dict, dump_config
from wnet.tasks.wandb_sink import WandbSink


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is passed to torch.device."""
    if name != "auto":
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"train.device={name} but CUDA is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(state["python"]) if not isinstance(state["python"], tuple) else state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_run_dir(cfg: Config) -> Path:
    """``<out_dir>/<name>``, with the resolved config saved as ``config.yaml``."""
    run_dir = Path(cfg.out_dir) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    return run_dir


@dataclass
class Run:
    """An open run: its config, folder, device, JSONL log and W&B sink."""

    cfg: Config
    dir: Path
    device: torch.device
    log: RunLog
    sink: WandbSink


@contextlib.contextmanager
def open_run(cfg: Config, job_type: str = "train") -> Iterator[Run]:
    """The opening and closing of every task's ``main``.

    Saves the resolved config in the run folder, seeds every RNG from ``train.seed``, sets
    torch's thread count (``train.threads``; restored on exit, so that a caller's setting
    survives), picks the device, and opens the log and the W&B sink (closed on exit).
    """
    run_dir = make_run_dir(cfg)
    seed_everything(cfg.train.seed)
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    sink = WandbSink(cfg, run_dir, job_type=job_type)
    log = RunLog(run_dir, sink)
    try:
        device = pick_device(cfg.train.device)
        print(f"run folder: {run_dir}  device: {device}  wandb: {'on' if sink.active else 'off'}")
        yield Run(cfg, run_dir, device, log, sink)
    finally:
        log.close()
        sink.finish()
        torch.set_num_threads(threads)


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` atomically: a temp file in the same folder, then ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (a file, or a run folder's ``last.pt``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def checkpoint_state(
    cfg: Config, step: int, models: dict, optimizers: dict, schedulers: dict, **extra
) -> dict:
    """Everything needed to resume: weights, optimisers, schedulers, step, config and RNG state."""
    return {
        "step": step,
        "config": config_to_dict(cfg),
        "models": {k: m.state_dict() for k, m in models.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
        "rng": rng_state(),
        **extra,
    }


def check_finite(losses: dict, step: int, run_dir: Path) -> None:
    """Stop the run on a NaN/inf loss; the last checkpoint on disk is from an earlier, finite step."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        raise FloatingPointError(
            f"non-finite loss at step {step}: {bad}; stopping. The last good checkpoint is {run_dir / 'last.pt'} "
            "(if one was written); lower optim.lr or check the input data."
        )


class RunLog:
    """Append-only JSONL log plus stdout (through tqdm, so progress bars stay intact), plus an optional sink."""

    def __init__(self, run_dir: Path, sink=None):
        self.path = Path(run_dir) / "log.jsonl"
        self.file = open(self.path, "a")
        self.sink = sink
        self.t0 = time.time()

    def log(self, split: str, step: int, echo: bool = True, **metrics) -> None:
        record = {"split": split, "step": step, "time": round(time.time() - self.t0, 3), **metrics}
        self.file.write(json.dumps(record, default=float) + "\n")
        self.file.flush()
        if echo:
            body = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
            )
            tqdm.write(f"[{split} {step}] {body}")
        if self.sink is not None:
            self.sink.log(
                {f"{split}/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}, step
            )

    def close(self) -> None:
        self.file.close()


def forever(loader):
    """Iterate a DataLoader epoch after epoch (reshuffling each time), yielding (epoch, batch)."""
    epoch = 0
    while True:
        n = 0
        for batch in loader:
            n += 1
            yield epoch, batch
        if n == 0:
            raise RuntimeError(
                "the training DataLoader is empty (fewer images than batch_size with drop_last?)"
            )
        epoch += 1
