"""Weights & Biases as one optional sink. It never decides whether a run succeeds.

Every call is guarded: if wandb is missing, cannot start (no network, no API key in online
mode) or fails mid-run, a warning is printed once and the run goes on; stdout and
``log.jsonl`` stay the source of truth. Only rank 0 logs.
"""

from __future__ import annotations

import dataclasses
import netrc
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from wnet.tasks.config import Config


def wandb_mode(mode: str) -> str:
    """``auto``: the ``WANDB_MODE`` environment variable if set, else online with an API key, else offline."""
    if mode != "auto":
        if mode not in ("online", "offline", "disabled"):
            raise ValueError(f"wandb.mode must be auto, online, offline or disabled, got {mode!r}")
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        pass
    return "offline"


class WandbSink:
    """A thin, failure-proof wrapper around a ``wandb`` run."""

    def __init__(
        self, cfg: Config, run_dir: Path, rank: int = 0, job_type: str = "train", run_id: str | None = None
    ):
        """Start (or, with ``run_id`` from a checkpoint, continue) a W&B run; rank > 0 never logs."""
        self.run = None
        self._warned = False
        self.mode = mode = wandb_mode(cfg.wandb.mode)
        if rank != 0 or mode == "disabled":
            return
        try:
            import wandb

            self._wandb = wandb
            self.run = wandb.init(
                project=cfg.wandb.project,
                entity=cfg.wandb.entity or None,
                group=cfg.wandb.group or None,
                name=cfg.name,
                tags=cfg.wandb.tags or None,
                job_type=job_type,
                dir=str(run_dir),
                config=dataclasses.asdict(cfg),
                mode=mode,
                id=run_id,
                resume="allow" if run_id else None,
                reinit="create_new",
                settings=wandb.Settings(init_timeout=60, silent=True),
            )
        except Exception as e:  # W&B must never stop training
            warnings.warn(
                f"W&B could not start ({type(e).__name__}: {e}); continuing without it", stacklevel=2
            )
            self.run = None

    def _guard(self, fn, *args, **kwargs):
        if self.run is None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if not self._warned:
                warnings.warn(
                    f"W&B call failed ({type(e).__name__}: {e}); continuing without it", stacklevel=3
                )
                self._warned = True
            return None

    @property
    def active(self) -> bool:
        return self.run is not None

    @property
    def status(self) -> str:
        """What the first screen says: online, offline (synced later with ``wandb sync``) or off."""
        return self.mode if self.active else "off"

    @property
    def run_id(self) -> str | None:
        """The W&B run id (saved in checkpoints so that a resumed run continues the same W&B run)."""
        return getattr(self.run, "id", None)

    def log(self, metrics: dict, step: int | None = None) -> None:
        self._guard(self.run.log, metrics, step=step) if self.run else None

    def images(
        self, key: str, images: list[np.ndarray], masks: list[dict] | None = None, step=None, captions=None
    ):
        """Log RGB uint8 images, each with optional ``{"predictions": (labels, class_labels), ...}`` masks."""

        def _do():
            out = []
            for i, img in enumerate(images):
                m = None
                if masks is not None:
                    m = {
                        name: {"mask_data": np.asarray(lab).astype(np.int32), "class_labels": cl}
                        for name, (lab, cl) in masks[i].items()
                    }
                out.append(self._wandb.Image(img, masks=m, caption=captions[i] if captions else None))
            self.run.log({key: out}, step=step)

        self._guard(_do)

    def table(self, key: str, columns: list[str], rows: list[list], step=None) -> None:
        """A table; cells that are pictures (uint8 arrays (H, W) or (H, W, 3)) become ``wandb.Image``."""

        def cell(v):
            return self._wandb.Image(v) if isinstance(v, np.ndarray) and v.ndim in (2, 3) else v

        data = lambda: [[cell(v) for v in row] for row in rows]  # noqa: E731 - built only when W&B runs
        self._guard(lambda: self.run.log({key: self._wandb.Table(columns=columns, data=data())}, step=step))

    def image_file(self, key: str, path: str | Path, step=None) -> None:
        self._guard(lambda: self.run.log({key: self._wandb.Image(str(path))}, step=step))

    def artifact(self, path: str | Path, name: str, type: str = "model") -> None:
        def _do():
            art = self._wandb.Artifact(name, type=type)
            art.add_file(str(path))
            self.run.log_artifact(art)

        self._guard(_do)

    def summary(self, values: dict) -> None:
        self._guard(lambda: self.run.summary.update(values))

    def finish(self) -> None:
        self._guard(self.run.finish) if self.run else None
        self.run = None
