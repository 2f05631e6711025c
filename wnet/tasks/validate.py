"""Every value with a range or a fixed set of choices, checked when the config is loaded.

A bad value stops the run before any data, model or run folder is made, with one line naming
the key, the value and what is allowed (:class:`~wnet.tasks.errors.ConfigError`). A checkpoint's
saved config goes through the same checks (``check_config(saved, here=False)``, from
``wnet.tasks.runtime.checkpoint_config``), less those about this machine and its files.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
from collections.abc import Collection
from pathlib import Path

import torch

from wnet.baselines import BASELINES, UCM2_BASELINES
from wnet.inference import AMP_MODES
from wnet.losses import parse_spec
from wnet.model import SegmentationUNet
from wnet.postprocess import HIERARCHIES
from wnet.tasks.build import CARVED, DATASETS, HELDOUT, LABELLED, OPTIMISERS, SCHEDULERS, SELECT
from wnet.tasks.config import Config
from wnet.tasks.errors import ConfigError, choice, need
from wnet.tasks.keys import parse_config
from wnet.tasks.steps import TRAIN_MODES
from wnet.tasks.validate_segment import SEGMENT_OUTPUTS, check_segment, check_segment_folders  # noqa: F401

# model.k: at most 1024 classes. The soft maps are K x H x W per image in every step (1024 classes of a
# 224 px crop: 0.2 GB per image and copy); label files are uint8 up to 256 classes, uint16 above.
MAX_K = 1024
MAX_WIDTH = 256  # model.base_width: 4x the paper's 64 (16x its 31M weights) is the most accepted
TRAINING = ("unsupervised", "supervised", "compare", "bsds")  # the tasks that train a U-Net
WANDB_MODES = ("auto", "online", "offline", "disabled")


def _at_least(section, names: str, low) -> None:
    for name in names.split():
        value = getattr(section, name)
        need(value >= low, name, value, f">= {low}")


def _positive(section, names: str) -> None:
    for name in names.split():
        value = getattr(section, name)
        need(value > 0, name, value, "> 0")


def _qualify(fn, prefix: str, section, *args) -> None:
    """Run a check on ``section`` and prefix the key in its message with the section's name."""
    try:
        fn(section, *args)
    except ConfigError as e:
        raise ConfigError(str(e).replace("config key '", f"config key '{prefix}.", 1)) from None


def check_device(name: str) -> None:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``; a CUDA device must exist on this machine."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name):
        raise ConfigError(
            f"config key 'train.device': {name!r} is not allowed; expected auto, cpu, mps, cuda or cuda:N"
        )
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            found = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise ConfigError(
                f"config key 'train.device': {name} asked for, but this machine has {found} CUDA devices"
            )
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("config key 'train.device': mps asked for, but MPS is not available here")


def _check_finite(data: dict, prefix: str = "") -> None:
    """Every float of the tree (and of its lists) is finite: ``optim.lr=inf`` would pass ``> 0``."""
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            _check_finite(value, f"{key}.")
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"config key '{key}': {v!r} is not allowed; expected a finite number")


def _check_model(m) -> None:
    _at_least(m, "k", 2)
    need(m.k <= MAX_K, "k", m.k, f"<= {MAX_K} (the most classes accepted; label files are uint16 above 256)")
    _at_least(m, "base_width", 1)
    need(m.base_width <= MAX_WIDTH, "base_width", m.base_width, f"<= {MAX_WIDTH} (4x the paper's 64)")
    choice("in_channels", m.in_channels, (1, 3))
    need(0 <= m.dropout < 1, "dropout", m.dropout, "a probability in [0, 1)")
    choice("padding", m.padding, ("zeros", "reflect", "replicate", "circular"))


def _check_ncut(n) -> None:
    need(n.radius >= 1, "radius", n.radius, ">= 1 (pixels; the window must contain neighbours)")
    _positive(n, "sigma_x sigma_i")
    choice("features", n.features, ("rgb", "grey"))


def _check_data(d, task: str) -> None:
    choice("name", d.name, DATASETS)
    _at_least(d, "image_size num_images num_eval_images", 1)
    _at_least(d, "eval_size num_workers num_classes", 0)
    need(len(d.scale) == 2 and 0 < d.scale[0] <= d.scale[1], "scale", d.scale, "[lo, hi] with 0 < lo <= hi")
    need(len(d.splits) >= 1, "splits", d.splits, "at least one split")
    need(0 <= d.val_fraction < 1, "val_fraction", d.val_fraction, "a fraction in [0, 1)")
    need(
        d.ignore_index is None or d.ignore_index >= -1, "ignore_index", d.ignore_index, "null, -1 or a label"
    )
    need(
        d.mask_threshold is None or 0 <= d.mask_threshold <= 255,
        "mask_threshold",
        d.mask_threshold,
        "null or 0..255",
    )
    if d.name != "procedural" and task != "segment":  # segment reads segment.input, not a dataset
        need(bool(d.root), "root", d.root, f"the folder of the {d.name!r} dataset (data.root=PATH)")
    if task in ("supervised", "compare"):
        choice("name", d.name, LABELLED)
    if task == "bsds":
        choice("name", d.name, ("bsds500",))


def _check_optim(o) -> None:
    choice("name", o.name, OPTIMISERS)
    choice("schedule", o.schedule, SCHEDULERS)
    _positive(o, "lr lr_gamma")
    need(0 <= o.momentum < 1, "momentum", o.momentum, "a value in [0, 1)")
    _at_least(o, "weight_decay", 0)
    steps = list(o.lr_steps)
    need(
        steps == sorted(set(steps)) and all(s >= 1 for s in steps), "lr_steps", steps, "increasing steps >= 1"
    )


def _check_train(t) -> None:
    _at_least(t, "iterations batch_size log_every ckpt_every", 1)
    _at_least(t, "eval_every num_samples threads ncut_weight recon_weight", 0)
    choice("mode", t.mode, TRAIN_MODES)
    choice("amp", t.amp, AMP_MODES)


def _check_losses(key: str, spec) -> None:
    try:
        parse_spec(spec)
    except ValueError as e:
        raise ConfigError(f"config key '{key}': {e}") from None


def _check_crop(cfg) -> None:
    """Windows within the training crop, and a BatchNorm batch with more than one value per channel."""
    crop = cfg.data.image_size
    for key, radius in [("ncut.radius", cfg.ncut.radius)] + [("crf.radius", cfg.crf.radius)] * (
        cfg.crf.kind == "torch"
    ):
        need(radius <= crop, key, radius, f"<= data.image_size ({crop} px): a window wider than the crop")
    bottom = crop // 2**SegmentationUNet.depth  # px per side at the bottom of the U-Net
    if cfg.task in TRAINING and not cfg.checkpoint:
        need(
            cfg.train.batch_size * bottom * bottom >= 2,
            "train.batch_size",
            cfg.train.batch_size,
            f">= 2 with data.image_size={crop}: the crop is {bottom}x{bottom} px at the bottom of the U-Net "
            "and BatchNorm needs more than one value per channel to train (or data.image_size >= 32)",
        )


def _check_tasks(cfg, here: bool = True) -> None:
    s, c, b = cfg.supervised, cfg.compare, cfg.bsds
    _check_losses("supervised.loss", s.loss)
    choice("supervised.class_weights", s.class_weights, ("", "inverse_frequency"))
    choice("supervised.mode", s.mode, ("auto", "binary", "multiclass"))
    for i, loss in enumerate(c.losses):
        _check_losses(f"compare.losses[{i}]", loss)
    need(c.eval_batch_size >= 1, "compare.eval_batch_size", c.eval_batch_size, ">= 1")
    choice("bsds.split", b.split, ("train", "val", "test"))
    need(b.nthresh >= 1, "bsds.nthresh", b.nthresh, ">= 1")
    for i, name in enumerate(b.baselines):
        choice(f"bsds.baselines[{i}]", name, BASELINES)
    need(
        min(b.max_images, b.workers, b.pad) >= 0,
        "bsds.max_images/workers/pad",
        (b.max_images, b.workers, b.pad),
        ">= 0",
    )
    choice("ucm", cfg.ucm, HIERARCHIES)
    for i, name in enumerate(b.ucms):
        choice(f"bsds.ucms[{i}]", name, HIERARCHIES)
    need(len(b.ucms) == len(set(b.ucms)), "bsds.ucms", b.ucms, "no repeats")
    if cfg.task == "bsds" and cfg.ucm not in b.ucms:
        raise ConfigError(
            f"config key 'bsds.ucms': {b.ucms} leaves out the pipeline's own hierarchy ucm={cfg.ucm}, "
            "whose row is the headline bsds/<metric>; add it, or set ucm to one of them"
        )
    owt_used = set(b.ucms) | set(b.baselines) & set(UCM2_BASELINES) if cfg.task == "bsds" else {cfg.ucm}
    if here and cfg.task in ("bsds", "segment") and owt_used - {"merge"}:
        need(  # the watershed of wnet.postprocess.owt: fail now rather than after the training
            importlib.util.find_spec("skimage") is not None,
            "ucm/bsds.ucms/baselines",
            (cfg.ucm, b.ucms, b.baselines),
            "scikit-image for OWT-UCM (pip install -r requirements.txt), or ucm=merge, bsds.ucms=[merge] "
            "and no ucm2 baseline",
        )


def _check_splits(cfg) -> None:
    """The carved splits: ``data.heldout`` and ``supervised.select_fraction`` (see ``wnet.tasks.build``)."""
    d, f = cfg.data, cfg.supervised.select_fraction
    for i, split in enumerate(d.splits):
        need(
            split not in CARVED,
            f"data.splits[{i}]",
            split,
            f"a split folder name ({', '.join(CARVED)} are carved)",
        )
    for i, pattern in enumerate(d.heldout):
        need(
            isinstance(pattern, str) and bool(pattern),
            f"data.heldout[{i}]",
            pattern,
            "a file-name glob like '0006R0_*'",
        )
    need(not d.heldout or d.name == "paired", "data.heldout", d.heldout, "[] unless data.name=paired")
    need(d.eval_split != SELECT, "data.eval_split", d.eval_split, "a reported split, not the selection split")
    need(d.eval_split != HELDOUT or bool(d.heldout), "data.eval_split", d.eval_split, "set data.heldout too")
    need(0 <= f < 1, "supervised.select_fraction", f, "a fraction in [0, 1)")
    if f > 0 and cfg.task in ("supervised", "compare"):
        need(d.name == "paired", "supervised.select_fraction", f, "0 unless data.name=paired")
        need(  # every method of a comparison trains on the same images and is reported as trained
            cfg.task != "compare", "supervised.select_fraction", f, "0 for task=compare (final weights)"
        )


def _check_library(cfg) -> None:
    for section in ("crf", "hierarchy", "owt"):
        try:
            getattr(cfg, section).check()
        except ValueError as e:  # the library names the key: "<section>.<name> must ..."
            raise ConfigError(f"config: {e}") from None


def _check_files(cfg) -> None:
    if cfg.resume and cfg.resume != "auto":
        p = Path(cfg.resume)
        need(
            p.is_file() or (p / "last.pt").is_file(),
            "resume",
            cfg.resume,
            "a checkpoint file or run folder, or auto",
        )
    if cfg.checkpoint:
        need(Path(cfg.checkpoint).is_file(), "checkpoint", cfg.checkpoint, "an existing checkpoint file")
    plain = Path(cfg.name).name == cfg.name and cfg.name not in ("", ".", "..") and "\\" not in cfg.name
    need(plain, "name", cfg.name, "a plain folder name (no '/'): the run folder is <out_dir>/<name>")
    if cfg.task == "segment":
        check_segment_folders(cfg.segment)


def check_config(cfg: Config, tasks: Collection[str] | None = None, here: bool = True) -> None:
    """Raise :class:`ConfigError` on the first value out of its range or set of choices.

    Args:
        tasks: the valid ``task`` names (the command line's table, ``wnet.tasks.cli.TASKS``); None:
            unchecked.
        here: also check what depends on this machine and its files (the device, ``resume=``,
            ``checkpoint=``, ``name=``, the segment folders, scikit-image); False for the saved
            config of a checkpoint, which may come from another machine.
    """
    if tasks is not None:
        choice("task", cfg.task, tasks)
    _check_finite(dataclasses.asdict(cfg))
    _qualify(_check_model, "model", cfg.model)
    _qualify(_check_ncut, "ncut", cfg.ncut)
    _qualify(_check_data, "data", cfg.data, cfg.task)
    _qualify(_check_optim, "optim", cfg.optim)
    _qualify(_check_train, "train", cfg.train)
    _check_crop(cfg)
    if here:
        check_device(cfg.train.device)
    if (
        here
        and cfg.train.sync_bn
        and not (
            cfg.train.device.startswith("cuda") or (cfg.train.device == "auto" and torch.cuda.is_available())
        )
    ):
        raise ConfigError("config key 'train.sync_bn': true needs CUDA (SyncBatchNorm runs on GPUs only)")
    choice("wandb.mode", cfg.wandb.mode, WANDB_MODES)
    _check_tasks(cfg, here)
    _check_splits(cfg)
    check_segment(cfg)
    _check_library(cfg)
    if here:
        _check_files(cfg)


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    check: bool = True,
    tasks: Collection[str] | None = None,
) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``key=value`` overrides; then every
    value is checked (``check=False`` skips the range checks, for tests of partial configs).

        cfg = load_config("experiments/configs/bsds500.yaml", ["model.k=32", "train.iterations=100"])
    """
    cfg = parse_config(path, overrides)
    if check:
        check_config(cfg, tasks)
    return cfg
