"""Training batches: the seeded, resumable DataLoader of a rank, and its workers' signal handling.

Every task that trains reads its batches through :func:`train_loader` and :func:`iterate`, so a
resumed run, any number of workers and any rank see the batches an uninterrupted run would, and a
SIGTERM or Ctrl-C to the process group reaches the main process only (it checkpoints, then stops).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader

from wnet.datasets.sampling import EpochSampler, SeededItems

if TYPE_CHECKING:
    from wnet.tasks.config import Config

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _ignore_stop_signals(worker_id: int) -> None:
    """A DataLoader worker ignores SIGTERM and SIGINT.

    SLURM, ``kill -- -PGID`` and Ctrl-C signal the whole process group. A worker killed by that
    signal made the main process raise "DataLoader worker ... is killed by signal" wherever it was,
    mid-step, and end without a checkpoint. Ignoring them, the workers keep serving batches while
    the main process finishes its step and writes ``last.pt``; they stop when the main process
    shuts the loader down, or by themselves when it dies (the DataLoader's watchdog). Workers are
    forked with both signals blocked (:func:`iterate`), so none arrives before this runs; one that
    did is discarded here.
    """
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def iterate(loader) -> Iterator:
    """``iter(loader)``, its worker processes forked with SIGTERM and SIGINT blocked (they inherit the
    mask; see :func:`_ignore_stop_signals`). The main process receives them once unblocked."""
    if not getattr(loader, "num_workers", 0) or threading.current_thread() is not threading.main_thread():
        return iter(loader)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def release_workers(loader) -> None:
    """Shut down the worker processes of a loader with persistent workers, now.

    They ignore SIGTERM (:func:`_ignore_stop_signals`), so ``multiprocessing``'s exit handler, which
    terminates daemonic children with SIGTERM and then waits for them, would wait forever; the
    loader's own shutdown tells them to exit instead. (``_iterator`` is where the DataLoader keeps its
    persistent workers; ``_shutdown_workers`` is what its ``__del__`` calls.)
    """
    it = getattr(loader, "_iterator", None)
    if it is not None and hasattr(it, "_shutdown_workers"):
        loader._iterator = None
        it._shutdown_workers()


def train_loader(cfg: Config, dataset, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Batches of ``train.batch_size`` for one rank, in an order fixed by the seed, the epoch and the
    position in it, with per-item augmentation seeds (``wnet.datasets.sampling``): a resumed run,
    any number of workers and any rank see exactly the batches an uninterrupted run would."""
    items = SeededItems(dataset, cfg.train.seed)
    sampler = EpochSampler(items, num_replicas=world_size, rank=rank, seed=cfg.train.seed)
    workers = cfg.data.num_workers
    return DataLoader(
        items,
        batch_size=cfg.train.batch_size,
        sampler=sampler,
        drop_last=sampler.num_samples >= cfg.train.batch_size,
        num_workers=workers,
        generator=torch.Generator().manual_seed(cfg.train.seed),  # worker seeds: never the global RNG
        persistent_workers=workers > 0,
        worker_init_fn=_ignore_stop_signals if workers > 0 else None,
        pin_memory=torch.cuda.is_available() and cfg.train.device != "cpu",  # faster host-to-GPU copies
    )
