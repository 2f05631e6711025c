"""Run folders: a new run's folder is chosen and claimed, and one run at a time holds it.

A new run goes to ``<out_dir>/<name>`` if it holds no run, with ``overwrite=true`` after emptying
it, else to the first free ``<name>-N`` (``wnet.tasks.runtime`` adds resuming). Nothing is written
or deleted outside ``out_dir``.

A run holds an exclusive ``fcntl.flock`` on ``<folder>/.lock`` for its lifetime.

Two jobs given the same folder (a scheduler's duplicate submission with ``resume=auto``, two
``overwrite=true`` runs) would otherwise share one ``log.jsonl`` and one ``last.pt``. The first to
take the lock owns the folder; the second refuses with one line naming the holder's PID, before it
writes anything there.

The kernel releases a ``flock`` when the last descriptor of the lock file closes, so a lock never
outlives its run, however the run ends (SIGKILL and power cuts included): no stale lock files to
clean up. The holder writes its PID into the file for the refusal message. Forked children
(DataLoader workers, process pools) close their copy of the descriptor at once, so a worker that
outlives a killed run for a moment does not keep its folder locked; they never unlock it, which
would unlock the parent too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import itertools
import os
import shutil
import time
from pathlib import Path

from wnet.tasks.config import Config
from wnet.tasks.errors import InputError, RunInUse, shown, writing
from wnet.tasks.keys import dump_config

LOCK_FILE = ".lock"
RUN_FILES = ("config.yaml", "log.jsonl", "last.pt")  # any of these: the folder holds a run
_HELD: set[int] = set()  # descriptors of the locks this process holds
_AT_FORK: list[bool] = []  # whether the fork hook is registered (once, at the first lock)


def _close_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


def _holder(fd: int) -> str:
    """The PID the holder wrote; it writes it right after locking, so wait a moment for it."""
    for _ in range(40):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.05)
    return "unknown"


class FolderLock:
    """The lock of one run folder; ``FolderLock.take(folder)`` or :class:`RunInUse`. A context manager
    that releases it on exit."""

    def __init__(self, folder: Path, fd: int):
        self.folder, self.fd = folder, fd

    @classmethod
    def take(cls, folder: Path) -> FolderLock:
        """Create ``folder`` if needed and lock it, or raise :class:`RunInUse` naming the holder's PID."""
        path = folder / LOCK_FILE
        with writing(folder):
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise RunInUse(
                f"run folder {shown(folder)} is in use by another run (PID {pid} holds {shown(path)}); "
                "wait for it to end, or give this run another name="
            ) from None
        if not _AT_FORK:
            os.register_at_fork(after_in_child=_close_in_child)
            _AT_FORK.append(True)
        _HELD.add(fd)
        lock = cls(folder, fd)
        try:
            with writing(path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            lock.release()
            raise
        return lock

    def release(self) -> None:
        if self.fd in _HELD:
            _HELD.discard(self.fd)
            os.close(self.fd)  # the last descriptor: the kernel drops the lock

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ----------------------------------------------------------------------------- a new run's folder
def _holds_run(folder: Path) -> bool:
    return any((folder / f).exists() for f in RUN_FILES)


def write_config(folder: Path, cfg: Config) -> None:
    with writing(folder / "config.yaml"):
        (folder / "config.yaml").write_text(dump_config(cfg))


def _empty(base: Path) -> None:
    """``overwrite=true``: delete what a run folder holds (its lock aside)."""
    others = [p for p in base.iterdir() if p.name != LOCK_FILE]
    if others and not _holds_run(base):
        raise InputError(
            f"overwrite=true: {shown(base)} is not a run folder (no {', '.join(RUN_FILES)}); not deleting it"
        )
    with writing(base):
        for p in others:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def make_run_dir(cfg: Config) -> tuple[Path, Config, FolderLock]:
    """A new run's folder, its config (``name`` set to the folder's) and its lock (release it when the run
    ends): ``<out_dir>/<name>`` if it holds no run, or with ``overwrite=true`` after emptying it; else the
    first free ``<name>-N``. The config is written in it."""
    base = Path(cfg.out_dir) / cfg.name
    if cfg.overwrite:  # this folder and no other; a run still writing there keeps it (RunInUse)
        if base.is_symlink() or not base.resolve().is_relative_to(Path(cfg.out_dir).resolve()):
            raise InputError(
                f"overwrite=true: {shown(base)} leads outside out_dir={cfg.out_dir}; not touching it"
            )
        lock = FolderLock.take(base)
        try:
            _empty(base)
            write_config(base, cfg)
        except BaseException:
            lock.release()
            raise
        return base, cfg, lock
    for i in itertools.count(1):
        named = dataclasses.replace(cfg, name=cfg.name if i == 1 else f"{cfg.name}-{i}")
        folder = Path(cfg.out_dir) / named.name
        if _holds_run(folder):
            continue
        try:
            lock = FolderLock.take(folder)
        except RunInUse:  # a run that has not written its config yet
            continue
        try:
            if _holds_run(folder):  # claimed by a run that ended meanwhile
                lock.release()
                continue
            write_config(folder, named)
        except BaseException:
            lock.release()
            raise
        if i > 1:
            print(f"note: {base} holds another run; this run is {named.name} (resume=... continues that one)")
        return folder, named, lock
    raise AssertionError("unreachable")


def discard_unused(folder: Path) -> bool:
    """Remove a run folder that a data error stopped before any checkpoint: the files a run writes
    (``config.yaml``, ``log.jsonl``, ``wandb/``, sub-run folders alike), then the folder if nothing else
    is in it. A folder holding a checkpoint anywhere is kept. True when the folder is gone."""
    if not folder.is_dir() or any(folder.rglob("*.pt")):
        return False
    for p in folder.iterdir():
        if p.is_dir():
            shutil.rmtree(p) if p.name == "wandb" else discard_unused(p)
        elif p.name in ("config.yaml", "log.jsonl", LOCK_FILE):  # the lock goes with the folder it guards
            p.unlink()
    try:
        folder.rmdir()
    except OSError:  # files the run did not write: not ours to delete
        return False
    print(f"removed the run folder {folder}: the run stopped before its first checkpoint")
    return True
