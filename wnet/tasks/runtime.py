"""Run plumbing shared by every task: the run folder, seeding, device, signals, the log.

Stdout plus ``<run>/log.jsonl`` are the source of truth; W&B (``wnet.tasks.wandb_sink``) is an
optional extra sink. A run never clobbers another: a new run whose folder ``<out_dir>/<name>``
already holds a run goes to ``<name>-2`` (then ``-3``, ...) and says so; ``resume=`` continues a
run in its own folder, ``resume=auto`` continues ``<out_dir>/<name>/last.pt`` when it exists, and
``overwrite=true`` replaces the folder. SIGTERM and SIGINT stop a training run after the current
step with a checkpoint (see ``wnet.tasks.loop``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wnet.tasks import distributed
from wnet.tasks.build import build_wnet
from wnet.tasks.checkpoints import checkpoint_path, load_checkpoint, load_weights
from wnet.tasks.config import Config
from wnet.tasks.distributed import Dist
from wnet.tasks.errors import CheckpointError, InputError
from wnet.tasks.keys import config_from_dict, config_to_dict, dump_config
from wnet.tasks.wandb_sink import WandbSink

RUN_FILES = ("config.yaml", "log.jsonl", "last.pt")  # any of these: the folder holds a run


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is passed to torch.device."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _holds_run(folder: Path) -> bool:
    return any((folder / f).exists() for f in RUN_FILES)


def _claim(folder: Path, text: str) -> bool:
    """Create ``folder/config.yaml`` exclusively (atomic: two runs started at once never share a folder)."""
    if _holds_run(folder):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(folder / "config.yaml", "x") as f:
            f.write(text)
    except FileExistsError:
        return False
    return True


def resume_target(cfg: Config) -> Path | None:
    """The checkpoint this run continues: ``resume=PATH``, or with ``resume=auto`` this run's ``last.pt`` if any."""
    if cfg.resume == "auto":
        last = Path(cfg.out_dir) / cfg.name / "last.pt"
        return last if last.is_file() else None
    return checkpoint_path(cfg.resume) if cfg.resume else None


def make_run_dir(cfg: Config, resume_from: Path | None = None) -> tuple[Path, Config]:
    """Choose and claim the run folder; returns it and the config with ``name`` set to its name.

    Resuming writes into the checkpoint's folder. Otherwise ``<out_dir>/<name>`` if it holds no
    run, or with ``overwrite=true`` after deleting it; else the first free ``<name>-N``.
    """
    base = Path(cfg.out_dir) / cfg.name
    if resume_from is not None or cfg.resume == "auto":
        folder = resume_from.parent if resume_from is not None else base
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(dump_config(cfg))
        return folder, cfg
    if cfg.overwrite and base.is_dir():
        if not _holds_run(base) and any(base.iterdir()):
            raise InputError(
                f"overwrite=true: {base} is not a run folder (no {', '.join(RUN_FILES)}); not deleting it"
            )
        shutil.rmtree(base)
    for i in itertools.count(1):
        name = cfg.name if i == 1 else f"{cfg.name}-{i}"
        named = dataclasses.replace(cfg, name=name)
        if _claim(Path(cfg.out_dir) / name, dump_config(named)):
            if i > 1:
                print(f"note: {base} holds another run; this run is {name} (resume=... continues that one)")
            return Path(cfg.out_dir) / name, named
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- what a checkpoint restores
def checkpoint_config(ckpt: dict, path: str | Path) -> Config:
    """The config a checkpoint was written with (keys this version no longer knows are skipped)."""
    try:
        return config_from_dict(ckpt["config"], strict=False)
    except Exception as e:
        raise CheckpointError(f"checkpoint {path}: its saved config does not load here ({e})") from None


def model_differences(saved: Config, current: Config) -> list[str]:
    """``model.*`` values that differ, as 'checkpoint has model.k=8, this run has model.k=5'."""
    a, b = config_to_dict(saved)["model"], config_to_dict(current)["model"]
    return [f"checkpoint has model.{k}={a[k]}, this run has model.{k}={b[k]}" for k in a if a[k] != b.get(k)]


def load_wnet(path: str | Path, device: torch.device):
    """The W-Net saved in a checkpoint, built from the checkpoint's own model config; (model, its config)."""
    ckpt = load_checkpoint(path)
    if "wnet" not in ckpt["models"]:
        raise CheckpointError(f"checkpoint {path} holds no W-Net (it has: {', '.join(ckpt['models'])})")
    saved = checkpoint_config(ckpt, path)
    model = build_wnet(saved.model)
    load_weights(model, ckpt["models"]["wnet"], path, "W-Net")
    print(f"loaded {path} (step {ckpt['step']})")
    return model.to(device), saved


def _check_resumable(cfg: Config, path: Path) -> dict:
    ckpt = load_checkpoint(path)
    diffs = model_differences(checkpoint_config(ckpt, path), cfg)
    if diffs:
        raise CheckpointError(f"cannot resume from {path}: " + "; ".join(diffs))
    return ckpt


@dataclass
class Run:
    """An open run: its config, folder, device, log and W&B sink; the checkpoint it resumes, if any;
    its place in the process group (only rank 0 writes)."""

    cfg: Config
    dir: Path
    device: torch.device
    log: RunLog
    sink: WandbSink
    resume: dict | None = None  # the loaded checkpoint to continue from
    resume_path: Path | None = None
    dist: Dist = field(default_factory=Dist)
    stop_signal: int | None = field(default=None)  # set by SIGTERM / SIGINT


@contextlib.contextmanager
def _signals(run: Run) -> Iterator[None]:
    """SIGTERM and SIGINT set ``run.stop_signal`` (the loop checkpoints and stops); a second SIGINT stops now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if run.stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        run.stop_signal = signum
        tqdm.write(f"received {signal.Signals(signum).name}: stopping after this step with a checkpoint")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _open_folder(cfg: Config, target: Path | None, d: Dist) -> tuple[Path, Config]:
    """Rank 0 chooses and claims the run folder; every rank gets its path and the config naming it."""
    chosen = None
    if d.main:
        try:
            chosen = make_run_dir(cfg, target)
        except Exception as e:  # the other ranks must not wait for a folder that will never come
            distributed.broadcast(e)
            raise
    chosen = distributed.broadcast(chosen)
    if isinstance(chosen, Exception):
        raise chosen
    return chosen


@contextlib.contextmanager
def open_run(cfg: Config, job_type: str = "train") -> Iterator[Run]:
    """The opening and closing of every task's ``main``.

    Claims the run folder and saves the resolved config in it, loads the checkpoint to resume
    (checking that its model config matches), seeds every RNG from ``train.seed`` (plus the rank,
    so that dropout differs between ranks), sets torch's thread count (``train.threads``; restored
    on exit), picks the device, opens the log and the W&B sink on rank 0 (the resumed run's W&B
    run continues), and turns SIGTERM/SIGINT into a stop request.
    """
    d = distributed.current()
    target = resume_target(cfg)
    ckpt = _check_resumable(cfg, target) if target is not None else None
    device = distributed.device(d, cfg.train.device) or pick_device(cfg.train.device)
    run_dir, cfg = _open_folder(cfg, target, d)
    seed_everything(cfg.train.seed + d.rank)
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    sink = WandbSink(cfg, run_dir, rank=d.rank, job_type=job_type, run_id=(ckpt or {}).get("wandb_id"))
    log = RunLog(run_dir if d.main else None, sink)
    run = Run(cfg, run_dir, device, log, sink, ckpt, target, d)
    failed = False
    try:
        print(f"run folder: {run_dir}  device: {device}  wandb: {'on' if sink.active else 'off'}")
        if d.active:
            global_batch = cfg.train.batch_size * d.world_size
            print(
                f"data parallel: {d.world_size} processes x batch {cfg.train.batch_size} = global batch {global_batch}"
            )
            log.log("run", 0, world_size=d.world_size, global_batch_size=global_batch)
            if d.main:  # a comment, so that the file still loads as a config (--config runs/x/config.yaml)
                with open(run_dir / "config.yaml", "a") as f:
                    f.write(
                        f"# data parallel: world_size {d.world_size}, global batch {global_batch} (train.batch_size per process)\n"
                    )
        with _signals(run):
            yield run
    except InputError:  # a data error found during the run (a mask of the wrong size, ...)
        failed = True
        raise
    finally:
        log.close()
        sink.finish()
        torch.set_num_threads(threads)
        if failed and d.main:
            discard_unused(run_dir)


class RunLog:
    """Append-only JSONL log plus stdout (through tqdm, so progress bars stay intact), plus an optional
    sink. ``run_dir=None`` (ranks other than 0) writes nothing."""

    def __init__(self, run_dir: Path | None, sink=None):
        self.path = Path(run_dir) / "log.jsonl" if run_dir is not None else None
        self.file = open(self.path, "a") if self.path is not None else None
        self.sink = sink
        self.t0 = time.time()

    def log(self, split: str, step: int, echo: bool = True, **metrics) -> None:
        if self.file is None:
            return
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
        if self.file is not None:
            self.file.close()


def discard_unused(folder: Path) -> bool:
    """Remove a run folder that a data error stopped before any checkpoint: the files a run writes
    (``config.yaml``, ``log.jsonl``, ``wandb/``, sub-run folders alike), then the folder if nothing else
    is in it. A folder holding a checkpoint anywhere is kept. True when the folder is gone."""
    if not folder.is_dir() or any(folder.rglob("*.pt")):
        return False
    for p in folder.iterdir():
        if p.is_dir():
            shutil.rmtree(p) if p.name == "wandb" else discard_unused(p)
        elif p.name in ("config.yaml", "log.jsonl"):
            p.unlink()
    try:
        folder.rmdir()
    except OSError:  # files the run did not write: not ours to delete
        return False
    print(f"removed the run folder {folder}: the run stopped before its first checkpoint")
    return True
