"""Run plumbing shared by every task: the run folder, seeding, device, signals, the log.

Stdout plus ``<run>/log.jsonl`` are the source of truth; W&B (``wnet.tasks.wandb_sink``) is an
optional extra sink. A run never clobbers another: a new run whose folder ``<out_dir>/<name>``
already holds a run goes to ``<name>-2`` (then ``-3``, ...) and says so; ``resume=`` continues a
run in its own folder, ``resume=auto`` continues ``<out_dir>/<name>/last.pt`` when it exists, and
``overwrite=true`` replaces the folder (:mod:`wnet.tasks.folders`). A run locks its folder for its
lifetime: a second job on the same folder refuses, naming the holder's PID. A resume checks its
checkpoint before anything is written. SIGTERM and SIGINT stop a training run after the current
step with a checkpoint (see ``wnet.tasks.loop``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
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
from wnet.tasks.errors import CheckpointError, ConfigError, InputError, Interrupted, writing
from wnet.tasks.folders import FolderLock, discard_unused, make_run_dir, write_config
from wnet.tasks.keys import config_from_dict, config_to_dict
from wnet.tasks.validate import check_config
from wnet.tasks.wandb_sink import WandbSink


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


def resume_target(cfg: Config) -> Path | None:
    """The checkpoint this run continues: ``resume=PATH``, or with ``resume=auto`` this run's ``last.pt`` if any."""
    if cfg.resume == "auto":
        last = Path(cfg.out_dir) / cfg.name / "last.pt"
        return last if last.is_file() else None
    return checkpoint_path(cfg.resume) if cfg.resume else None


def _stamp(path: Path | None) -> tuple | None:
    if path is None or not path.is_file():
        return None
    st = path.stat()
    return path, st.st_ino, st.st_size, st.st_mtime_ns


def claim_run_dir(cfg: Config) -> tuple[Path, Config, FolderLock, Path | None, dict | None]:
    """Rank 0's run folder: (folder, config naming it, its lock, the checkpoint to resume, its contents).

    A resume checks its checkpoint (readable, the task, the architecture, the saved config) before
    anything is written; then the folder is locked, and the checkpoint checked again if it changed
    meanwhile (a run that was still writing it). ``resume=PATH`` continues in PATH's folder, which
    becomes this run's ``out_dir`` / ``name``.
    """
    if not cfg.resume:
        return (*make_run_dir(cfg), None, None)
    target = resume_target(cfg)
    ckpt = check_resumable(cfg, target) if target is not None else None
    folder = target.parent if cfg.resume != "auto" else Path(cfg.out_dir) / cfg.name
    lock = FolderLock.take(folder)
    try:
        again = resume_target(cfg)
        if _stamp(again) != _stamp(target):
            target, ckpt = again, check_resumable(cfg, again) if again is not None else None
        cfg = dataclasses.replace(cfg, out_dir=str(folder.parent), name=folder.name)
        write_config(folder, cfg)
    except BaseException:
        lock.release()
        raise
    return folder, cfg, lock, target, ckpt


# ----------------------------------------------------------------------------- what a checkpoint restores
def checkpoint_config(ckpt: dict, path: str | Path) -> Config:
    """The config a checkpoint was written with (keys this version no longer knows are skipped),
    checked as a command line is (less what depends on the machine it was written on), so that an
    absurd saved value (``model.base_width=200000``) stops here and not in a 1 TB allocation."""
    try:
        saved = config_from_dict(ckpt["config"], strict=False)
    except Exception as e:
        raise CheckpointError(f"checkpoint {path}: its saved config does not load here ({e})") from None
    try:
        check_config(saved, here=False)
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {path}: its saved config is refused: {e}") from None
    return saved


def model_differences(saved: Config, current: Config) -> list[str]:
    """``model.*`` values that differ, as 'checkpoint has model.k=8, this run has model.k=5'."""
    a, b = config_to_dict(saved)["model"], config_to_dict(current)["model"]
    return [f"checkpoint has model.{k}={a[k]}, this run has model.{k}={b[k]}" for k in a if a[k] != b.get(k)]


def model_overrides(saved: Config, current: Config) -> list[str]:
    """``model.*`` values this run sets (they differ from the defaults) that contradict the checkpoint's."""
    a, b, default = (config_to_dict(c)["model"] for c in (saved, current, Config()))
    return [
        f"checkpoint has model.{k}={a[k]}, this run sets model.{k}={b[k]}"
        for k in a
        if b[k] != a[k] and b[k] != default[k]
    ]


def load_wnet(path: str | Path, device: torch.device, current: Config | None = None):
    """The W-Net saved in a checkpoint, built from the checkpoint's own model config; (model, its config).

    With ``current`` (the run's config), ``model.*`` values it sets that contradict the checkpoint
    are refused: the checkpoint's model is what runs, so an override would only be recorded, not used.
    """
    ckpt = load_checkpoint(path)
    if "wnet" not in ckpt["models"]:
        raise CheckpointError(f"checkpoint {path} holds no W-Net (it has: {', '.join(ckpt['models'])})")
    saved = checkpoint_config(ckpt, path)
    clashes = model_overrides(saved, current) if current is not None else []
    if clashes:
        raise CheckpointError(
            f"checkpoint {path}: " + "; ".join(clashes) + ". The checkpoint's model is what runs: drop the "
            "model.* overrides"
        )
    model = build_wnet(saved.model)
    load_weights(model, ckpt["models"]["wnet"], path, "W-Net")
    print(f"loaded {path} (step {ckpt['step']})")
    return model.to(device), saved


TRAINS = {"unsupervised": "wnet", "bsds": "wnet", "supervised": "unet"}  # task -> the model it trains


def check_resumable(cfg: Config, path: Path) -> dict:
    """The checkpoint at ``path``, if this run can continue it: readable, of a task that trains the
    same model, with a valid saved config and this run's architecture; else :class:`CheckpointError`."""
    ckpt = load_checkpoint(path)
    saved = checkpoint_config(ckpt, path)
    need, has = TRAINS.get(cfg.task), sorted(ckpt["models"])
    if need is not None and has != [need]:
        raise CheckpointError(
            f"cannot resume from {path}: it is a checkpoint of task={saved.task} (models: {', '.join(has)}), "
            f"this run is task={cfg.task}, which trains {need}"
        )
    diffs = model_differences(saved, cfg)
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
            last = run.dir / "last.pt"
            kept = f"the last checkpoint is {last}" if last.is_file() else "no checkpoint was written"
            raise Interrupted(f"stopped at once by a second Ctrl-C, without a checkpoint now; {kept}", signum)
        run.stop_signal = signum
        # training checkpoints after its step; evaluation (up to an hour) stops after its batch
        again = "; Ctrl-C again stops at once" if signum == signal.SIGINT else ""
        tqdm.write(
            f"received {signal.Signals(signum).name}: stopping after this training step (with a checkpoint)"
            f" or evaluation batch{again}"
        )

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def stop_if_signalled(run: Run, during: str) -> None:
    """After training, a SIGTERM / SIGINT stops the run at the next call (between batches of work):
    there is nothing left to checkpoint, and evaluation can take an hour. Raises :class:`Interrupted`
    naming the trained model that is kept, if any."""
    if run.stop_signal is None:
        return
    last = run.dir / "last.pt"
    kept = (
        f"the trained model is kept in {last} (score it with checkpoint={last})"
        if last.is_file()
        else f"the model came from checkpoint={run.cfg.checkpoint}"
        if run.cfg is not None and run.cfg.checkpoint
        else "no checkpoint"
    )
    name = signal.Signals(run.stop_signal).name
    raise Interrupted(f"stopped by {name} during {during}; {kept}", run.stop_signal)


def _open_folder(cfg: Config, d: Dist) -> tuple[Path, Config, FolderLock | None, Path | None, dict | None]:
    """Rank 0 checks the checkpoint to resume, then claims and locks the run folder; every rank gets the
    folder, the config naming it and the checkpoint (the other ranks load it themselves; no lock)."""
    if d.main:
        try:
            folder, cfg, lock, target, ckpt = claim_run_dir(cfg)
        except Exception as e:  # the other ranks must not wait for a folder that will never come
            distributed.broadcast(e)
            raise
        distributed.broadcast((folder, cfg, target))
        return folder, cfg, lock, target, ckpt
    chosen = distributed.broadcast(None)
    if isinstance(chosen, Exception):
        raise chosen
    folder, cfg, target = chosen
    return folder, cfg, None, target, load_checkpoint(target) if target is not None else None


@contextlib.contextmanager
def open_run(cfg: Config, job_type: str = "train") -> Iterator[Run]:
    """The opening and closing of every task's ``main``.

    Checks the checkpoint to resume (its task, architecture and saved config) before anything is
    written, claims and locks the run folder for the run's lifetime and saves the resolved config
    in it, seeds every RNG from ``train.seed`` (plus the rank,
    so that dropout differs between ranks), sets torch's thread count (``train.threads``; restored
    on exit), picks the device, opens the log and the W&B sink on rank 0 (the resumed run's W&B
    run continues), and turns SIGTERM/SIGINT into a stop request.
    """
    d = distributed.current()
    device = distributed.device(d, cfg.train.device) or pick_device(cfg.train.device)
    run_dir, cfg, lock, target, ckpt = _open_folder(cfg, d)
    try:
        with _opened(cfg, run_dir, device, d, job_type, ckpt, target) as run:
            yield run
    finally:
        if lock is not None:
            lock.release()


@contextlib.contextmanager
def _opened(cfg: Config, run_dir: Path, device, d: Dist, job_type: str, ckpt, target) -> Iterator[Run]:
    seed_everything(cfg.train.seed + d.rank)
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    sink = WandbSink(cfg, run_dir, rank=d.rank, job_type=job_type, run_id=(ckpt or {}).get("wandb_id"))
    log = RunLog(run_dir if d.main else None, sink)
    run = Run(cfg, run_dir, device, log, sink, ckpt, target, d)
    failed = False
    try:
        print(f"run folder: {run_dir}  device: {device}  wandb: {sink.status}")
        if d.active:
            global_batch = cfg.train.batch_size * d.world_size
            print(
                f"data parallel: {d.world_size} processes x batch {cfg.train.batch_size} = global batch {global_batch}"
            )
            log.log("run", 0, world_size=d.world_size, global_batch_size=global_batch)
            if d.main:  # a comment, so that the file still loads as a config (--config runs/x/config.yaml)
                with writing(run_dir / "config.yaml"), open(run_dir / "config.yaml", "a") as f:
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
        with writing(self.path):
            self.file = open(self.path, "a") if self.path is not None else None  # noqa: SIM115
        self.sink = sink
        self.t0 = time.time()

    def log(self, split: str, step: int, echo: bool = True, **metrics) -> None:
        if self.file is None:
            return
        record = {"split": split, "step": step, "time": round(time.time() - self.t0, 3), **metrics}
        with writing(self.path):
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
            with contextlib.suppress(OSError):  # a full disk was reported when the write failed
                self.file.close()
