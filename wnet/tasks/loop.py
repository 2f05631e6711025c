"""The one training loop, shared by the unsupervised and supervised tasks.

A task hands it a step function (one optimisation step on one batch, returning its losses) and
the parts to checkpoint; the loop does everything around it:

    while step < train.iterations:
        batch = next batch (epoch after epoch)
        losses = step_fn(batch); schedulers step; step += 1
        stop on a non-finite loss
        every log_every steps: log the window's mean losses
        every eval_every steps (and at the end): eval_fn(state)
        every ckpt_every steps (and at the end): write last.pt

Everything a resumed run needs is in the checkpoint (``checkpoint``): models, optimisers,
schedulers, the step, the epoch and the number of batches done in it, the task's own state
(``state.extra``), every RNG and the W&B run id. The batch order is a pure function of the seed,
the epoch and the position (``wnet.datasets.sampling``), so a run resumed after a kill continues
with exactly the batches the interrupted run would have seen. SIGTERM / SIGINT (``run.stop_signal``)
stop the loop after the current step, with a checkpoint.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm import tqdm

from wnet.tasks import distributed
from wnet.tasks.checkpoints import checkpoint_state, load_weights, rng_state, save_checkpoint, set_rng_state
from wnet.tasks.errors import DivergedError, InputError, Interrupted
from wnet.tasks.loaders import iterate, release_workers

if TYPE_CHECKING:
    from wnet.tasks.runtime import Run


@dataclass
class Parts:
    """What the loop checkpoints, steps and switches between train and eval mode (by name)."""

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]


@dataclass
class TrainState:
    """Where the run is: the step count, the epoch and the batches done in it, and the task's own
    state (kept in checkpoints)."""

    step: int = 0
    epoch: int = 0
    position: int = 0  # batches of this epoch already trained on
    extra: dict = field(default_factory=dict)
    # seconds spent in the training loop (its evaluations included) over every sitting of the run:
    # a resumed run adds to the interrupted one's instead of reporting only its own share
    train_time: float = 0.0


def check_finite(losses: dict, step: int, run_dir: Path) -> None:
    """Stop the run on a NaN/inf loss; the last checkpoint on disk is from an earlier, finite step."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        last = run_dir / "last.pt"
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
        raise DivergedError(
            f"non-finite loss at step {step}: {bad}; stopping; {kept}. Lower optim.lr or check the input data."
        )


def checkpoint(run: Run, parts: Parts, state: TrainState, name: str = "last.pt", **extra) -> None:
    """Write ``<run>/<name>`` durably with everything needed to resume (called on every rank: each
    rank's RNG state is gathered; rank 0 writes)."""
    rngs = distributed.gather(rng_state())
    if not run.dist.main:
        return
    save_checkpoint(
        run.dir / name,
        checkpoint_state(
            run.cfg, state.step, parts.models, parts.optimizers, parts.schedulers, rng_ranks=rngs,
            epoch=state.epoch, position=state.position, extra=state.extra, wandb_id=run.sink.run_id,
            world_size=run.dist.world_size, train_time=state.train_time, **extra,
        ),
    )  # fmt: skip


def resume(run: Run, parts: Parts, state: TrainState) -> None:
    """Continue from the checkpoint the run opened with (``run.resume``), if any, into ``parts`` and ``state``."""
    ckpt, path = run.resume, run.resume_path
    if ckpt is None:
        return
    for name, model in parts.models.items():
        load_weights(model, ckpt["models"][name], path, name)
    for kind, objects in (("optimizers", parts.optimizers), ("schedulers", parts.schedulers)):
        for name, obj in objects.items():
            obj.load_state_dict(ckpt[kind][name])
    ranks = ckpt.get("rng_ranks") or [ckpt["rng"]]
    if len(ranks) != run.dist.world_size:
        print(
            f"note: the checkpoint has {len(ranks)} ranks' RNG states, this run {run.dist.world_size}: not bit-exact"
        )
    set_rng_state(ranks[run.dist.rank % len(ranks)])
    state.step, state.epoch, state.position = ckpt["step"], ckpt.get("epoch", 0), ckpt.get("position", 0)
    state.extra.update(ckpt.get("extra", {}))
    state.train_time = float(ckpt.get("train_time", 0.0))
    print(f"resumed from {path} at step {state.step} (epoch {state.epoch}, batch {state.position})")


def batches(loader, state: TrainState):
    """Training batches epoch after epoch from ``state.epoch`` / ``state.position`` on.

    With an ``EpochSampler`` the order is that of an uninterrupted run; the caller advances
    ``state.position`` after each step and this generator moves ``state.epoch`` on. A plain
    iterable (tests) is replayed epoch after epoch.
    """
    sampler = getattr(loader, "sampler", None)
    while True:
        if hasattr(sampler, "set_position"):
            sampler.set_position(state.epoch, state.position * loader.batch_size)
        n = 0
        for batch in iterate(loader):  # workers survive a SIGTERM to the process group
            n += 1
            yield batch
        if n == 0 and state.position == 0:
            raise InputError("the training data gives no batch (fewer images than train.batch_size?)")
        state.epoch, state.position = state.epoch + 1, 0


class _Window:
    """Running sums of the losses since the last log line."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def pop_means(self) -> dict[str, float]:
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def _agree(run: Run, losses: dict[str, float]) -> dict[str, float]:
    """Ranks exchange their losses (the log shows the mean over ranks, and a NaN on one rank stops them
    all at the same step) and whether a signal arrived (so that all stop after the same step)."""
    values = distributed.all_sum([*losses.values(), float(run.stop_signal is not None)])
    if values[-1] > 0 and run.stop_signal is None:
        run.stop_signal = signal.SIGTERM  # another rank was signalled: stop together
    return {k: float(v) / run.dist.world_size for k, v in zip(losses, values[:-1], strict=True)}


def stop(run: Run, parts: Parts, state: TrainState) -> None:
    """After SIGTERM / SIGINT: write the checkpoint, then raise :class:`Interrupted` saying how to resume."""
    checkpoint(run, parts, state)
    name = signal.Signals(run.stop_signal).name
    raise Interrupted(
        f"stopped by {name} at step {state.step}; checkpoint {run.dir / 'last.pt'} written. Continue with "
        f"resume={run.dir / 'last.pt'} (or resume=auto name={run.cfg.name} out_dir={run.cfg.out_dir})",
        run.stop_signal,
    )


def train_loop(
    run: Run,
    parts: Parts,
    step_fn: Callable[[dict], dict[str, float]],
    loader,
    state: TrainState,
    eval_fn: Callable[[TrainState], None] | None = None,
    eval_every: int = 0,
    echo: bool = True,
) -> TrainState:
    """Run ``step_fn`` on batches from ``loader`` until ``train.iterations`` steps.

    Args:
        run: the open run (config, folder, log).
        parts: models, optimisers and schedulers; every scheduler steps after every step.
        step_fn: one optimisation step on a batch (zero_grad, forward, backward, optimiser
            step); returns the step's losses as floats.
        loader: training batches; iterated epoch after epoch.
        state: the step, epoch and task state (resumed or fresh); updated in place.
        eval_fn: called with the state every ``eval_every`` steps and after the last step.
        eval_every: 0 disables periodic evaluation.
        echo: print the windowed losses (they always go to the log).
    """
    stream = batches(loader, state)
    try:
        _steps(run, parts, step_fn, stream, state, eval_fn, eval_every, echo)
    finally:  # however the loop ends: workers must not outlive it (they ignore SIGTERM)
        stream.close()
        release_workers(loader)
    return state


def _steps(run: Run, parts: Parts, step_fn, stream, state: TrainState, eval_fn, eval_every: int, echo: bool):
    """The body of :func:`train_loop`: steps until ``train.iterations``, or a stop signal."""
    t, window = run.cfg.train, _Window()
    base, t0 = state.train_time, time.perf_counter()
    with tqdm(total=t.iterations, initial=state.step, desc="train", dynamic_ncols=True, leave=False) as bar:
        while state.step < t.iterations:
            batch = next(stream)
            for m in parts.models.values():
                m.train()
            losses = step_fn(batch)
            for s in parts.schedulers.values():
                s.step()
            state.step, state.position = state.step + 1, state.position + 1
            if run.dist.active:
                losses = _agree(run, losses)
            check_finite(losses, state.step, run.dir)
            window.add(losses)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()} | {"epoch": state.epoch})
            last = state.step == t.iterations
            if state.step % t.log_every == 0 or last:
                lr = next(iter(parts.optimizers.values())).param_groups[0]["lr"]
                run.log.log("train", state.step, echo=echo, **window.pop_means(), lr=lr, epoch=state.epoch)
            if eval_fn is not None and eval_every and (state.step % eval_every == 0 or last):
                eval_fn(state)
            state.train_time = base + time.perf_counter() - t0  # before any checkpoint of this step
            if run.stop_signal is not None and not last:
                stop(run, parts, state)
            if state.step % t.ckpt_every == 0 and not last:
                checkpoint(run, parts, state)
