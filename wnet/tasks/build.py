"""Config -> objects: datasets, models, losses, optimisers and schedulers.

The one place that reads the config tree to call the library, so every task (and every method
of a comparison) gets exactly the same images, splits, transforms and architectures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from wnet.datasets.classes import class_frequencies, load_ignore_index
from wnet.datasets.images import ImageFolder, bsds_files, list_images
from wnet.datasets.paired import MaskSizeError, PairedFolderDataset, carve_split
from wnet.datasets.procedural import ProceduralShapes
from wnet.datasets.sampling import DatasetView
from wnet.datasets.transforms import make_transforms
from wnet.datasets.voc import VOC_IGNORE_INDEX, VOCSegmentation
from wnet.losses import LOSSES, get_loss, parse_spec
from wnet.model import SegmentationUNet, WNet
from wnet.postprocess.pipeline import Stages
from wnet.tasks.errors import InputError

if TYPE_CHECKING:
    from wnet.tasks.config import Config, ModelConfig, OptimConfig


# ----------------------------------------------------------------------------- data
INPUT_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError)  # what the loaders raise about a file


class Checked(DatasetView):
    """A dataset whose loading errors (a corrupt image, a mask of the wrong size, ...) are user errors:
    the loaders' messages name the file, and :class:`InputError` prints them as one line."""

    def __getitem__(self, index):
        try:
            return self.dataset[index]
        except MaskSizeError as e:
            raise InputError(
                f"{e}; data.resize_to_mask=true resizes each image to its mask's size (when the aspect ratios agree)"
            ) from e
        except INPUT_ERRORS as e:
            raise InputError(str(e)) from e


def _inputs(build):
    """Building a dataset: the loaders' errors about files and folders become :class:`InputError`."""

    @functools.wraps(build)
    def wrapped(*args, **kwargs):
        try:
            out = build(*args, **kwargs)
        except INPUT_ERRORS as e:
            raise InputError(str(e)) from e
        wrap = lambda d: d if isinstance(d, Checked) else Checked(d)  # noqa: E731
        return tuple(map(wrap, out)) if isinstance(out, tuple) else wrap(out)

    return wrapped


def ignore_index(cfg: Config) -> int | None:
    """``data.ignore_index``: None takes the class file's (VOC: 255), -1 means none."""
    value = cfg.data.ignore_index
    if value is None:
        if cfg.data.name == "voc":
            return VOC_IGNORE_INDEX
        return load_ignore_index(cfg.data.classes_file) if cfg.data.classes_file else None
    return None if value < 0 else value


# Splits carved out of the training split (data.splits[0]) by wnet.datasets.paired.carve_split: HELDOUT, the
# files matching data.heldout (unseen data for evaluation), and SELECT, the last supervised.select_fraction of
# the rest in task=supervised (picks best.pt). The training split itself is what is left.
HELDOUT, SELECT = "heldout", "select"
CARVED = (HELDOUT, SELECT)


def select_fraction(cfg: Config) -> float:
    """The fraction of the training files kept for model selection: task=supervised only."""
    return cfg.supervised.select_fraction if cfg.task == "supervised" else 0.0


def carved(cfg: Config, split: str) -> tuple[str, Callable | None]:
    """(the folder split to read, the part of it to keep) for ``split``; no part for an uncarved split."""
    d, train = cfg.data, cfg.data.splits[0]
    if split not in (*CARVED, train) or not (d.heldout or select_fraction(cfg)):
        return split, None
    part = "train" if split == train else split
    return train, functools.partial(_part, heldout=tuple(d.heldout), fraction=select_fraction(cfg), part=part)


def _part(names: list[str], heldout: tuple, fraction: float, part: str) -> list[int]:
    try:
        return carve_split(names, heldout, fraction)[part]
    except ValueError as e:  # name the config keys behind the carving
        raise ValueError(f"data.heldout / supervised.select_fraction: {e}") from None


def _paired(cfg: Config, split: str, tf):
    d = cfg.data
    if not d.root:
        raise ValueError("data.root must be set for data.name=paired")
    folder, keep = carved(cfg, split)
    return PairedFolderDataset(
        d.root, folder, image_dir=d.image_dir, mask_dir=d.mask_dir, num_classes=d.num_classes,
        ignore_index=ignore_index(cfg), binary_255=d.binary_255, transform=tf, in_channels=cfg.model.in_channels,
        val_fraction=d.val_fraction, classes_file=d.classes_file or None, mask_threshold=d.mask_threshold,
        resize_to_mask=d.resize_to_mask, keep=keep,
    )  # fmt: skip


def _voc(cfg: Config, split: str, tf):
    return VOCSegmentation(
        cfg.data.root, split, download=cfg.data.download, transform=tf, in_channels=cfg.model.in_channels
    )


def _procedural(cfg: Config, train_tf, eval_tf):
    d, c = cfg.data, cfg.model.in_channels
    train = ProceduralShapes(d.num_images, d.image_size, cfg.train.seed, c, flip=d.flip)
    held = ProceduralShapes(d.num_eval_images, d.eval_size or d.image_size, cfg.train.seed + 1_000_003, c)
    return train, held


def _bsds500(cfg: Config, train_tf, eval_tf):
    d, c = cfg.data, cfg.model.in_channels
    files = [f for split in d.splits for f in bsds_files(d.root, split)[0]]
    held_imgs, held_gts = bsds_files(d.root, d.eval_split)
    n = d.num_eval_images  # held-out images for losses and sample panels (the benchmark scores all)
    return ImageFolder(files, c, train_tf), ImageFolder(held_imgs[:n], c, eval_tf, gt_paths=held_gts[:n])


def _folder(cfg: Config, train_tf, eval_tf):
    d, c = cfg.data, cfg.model.in_channels
    files = list_images(d.root)
    n_held = max(1, min(len(files) // 10, d.num_eval_images))  # last files are held out
    return ImageFolder(files[:-n_held] or files, c, train_tf), ImageFolder(files[-n_held:], c, eval_tf)


class Dataset(NamedTuple):
    """A ``data.name``: how to build its labelled split ``(cfg, split, transform) -> dataset`` or, for
    image-only data, its ``(cfg, train transform, eval transform) -> (train set, held-out set)``."""

    labelled: Callable | None = None
    unlabelled: Callable | None = None


# data.name -> builder: the one table that validation (wnet.tasks.validate) and building read
DATASETS = {
    "procedural": Dataset(unlabelled=_procedural),
    "folder": Dataset(unlabelled=_folder),
    "bsds500": Dataset(unlabelled=_bsds500),
    "paired": Dataset(labelled=_paired),
    "voc": Dataset(labelled=_voc),
}
LABELLED = tuple(name for name, kind in DATASETS.items() if kind.labelled)  # with masks: supervised tasks


@_inputs
def build_labelled(cfg: Config, split: str, train: bool):
    """A labelled dataset for ``split`` with training augmentation (``train``) or the eval resize.

    Items are ``{"image": (C, H, W) float in [0, 1], "label": (H, W) int64, "name": str}``.
    """
    d = cfg.data
    if d.name not in LABELLED:
        raise ValueError(f"data.name={d.name!r} is not labelled; expected one of {', '.join(LABELLED)}")
    size = d.image_size if train else d.eval_size
    tf = make_transforms(
        train, size, scale=tuple(d.scale), flip=d.flip and train, ignore_index=ignore_index(cfg)
    )
    return DATASETS[d.name].labelled(cfg, split, tf)


@_inputs
def build_unlabelled(cfg: Config):
    """(train set, held-out set) for W-Net training; items carry ``image`` (and maybe ``label``)."""
    d = cfg.data
    if d.name not in DATASETS:
        raise ValueError(f"data.name={d.name!r} is not a dataset; use one of {', '.join(DATASETS)}")
    if d.name in LABELLED:  # labelled data, labels unused for training (kept for evaluation)
        return build_labelled(cfg, d.splits[0], train=True), build_labelled(cfg, d.eval_split, train=False)
    train_tf = make_transforms(True, d.image_size, scale=tuple(d.scale), flip=d.flip)
    eval_tf = make_transforms(False, d.eval_size)
    return DATASETS[d.name].unlabelled(cfg, train_tf, eval_tf)


def eval_batch_size(cfg: Config) -> int:
    """Images per evaluation forward pass: 1 at full resolution (sizes may differ), else the training batch."""
    return cfg.train.batch_size if cfg.data.eval_size else 1


# ----------------------------------------------------------------------------- models
def build_wnet(m: ModelConfig) -> WNet:
    return WNet(m.k, m.in_channels, m.base_width, m.dropout, m.separable, m.padding)


def build_unet(m: ModelConfig, out_channels: int) -> SegmentationUNet:
    """U_Enc's architecture with ``out_channels`` logits (C, or 1 in binary mode)."""
    return SegmentationUNet(m.in_channels, out_channels, m.base_width, m.dropout, m.separable, m.padding)


def gpb_cache(cfg: Config) -> str:
    """Where each image's gPb is kept (``bsds.gpb_cache``, else ``<out_dir>/gpb_cache``): shared by the
    gpb-owt-ucm baseline, the paper's hierarchies, every seed and every rerun."""
    return cfg.bsds.gpb_cache or str(Path(cfg.out_dir) / "gpb_cache")


def stages(cfg: Config, gpb_cache: str = "") -> Stages:
    """The post-processing stages' parameters: the ``crf``, ``hierarchy`` and ``owt`` sections, and
    where gPb is kept (``""``: computed for each image and dropped)."""
    return Stages(crf=cfg.crf, hierarchy=cfg.hierarchy, owt=cfg.owt, gpb_cache=gpb_cache)


# optim.name -> (optim section, parameters) -> optimiser
OPTIMISERS = {
    "adam": lambda o, params: torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay),
    "sgd": lambda o, params: torch.optim.SGD(
        params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
    ),
}
# optim.schedule -> (optim section, optimiser, train.iterations) -> scheduler, stepped after every step
SCHEDULERS = {
    # lr times lr_gamma at each step in lr_steps (the paper divides by 10 every 1000 iterations)
    "step": lambda o, opt, iterations: torch.optim.lr_scheduler.MultiStepLR(
        opt, list(o.lr_steps), o.lr_gamma
    ),
    # cosine annealing from lr to 0 over the run (lr_steps unused)
    "cosine": lambda o, opt, iterations: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=iterations),
}


def build_optimizer(o: OptimConfig, params) -> torch.optim.Optimizer:
    """``OPTIMISERS[optim.name]`` over ``params``."""
    return OPTIMISERS[o.name](o, params)


def build_scheduler(o: OptimConfig, optimizer, iterations: int) -> torch.optim.lr_scheduler.LRScheduler:
    """``SCHEDULERS[optim.schedule]`` of ``optimizer`` for a run of ``iterations`` steps."""
    return SCHEDULERS[o.schedule](o, optimizer, iterations)


# ----------------------------------------------------------------------------- supervised losses
def supervised_mode(mode: str, loss_spec, num_classes: int) -> str:
    """'auto' -> 'binary' when C == 2 and every loss term has a binary form, else 'multiclass'."""
    if mode not in ("auto", "binary", "multiclass"):
        raise ValueError(f"supervised.mode must be auto, binary or multiclass, got {mode!r}")
    names = parse_spec(loss_spec)
    if mode == "binary" and num_classes != 2:
        raise ValueError(f"supervised.mode=binary needs 2 classes, the data has {num_classes}")
    if mode != "auto":
        return mode
    binary_ok = all("binary" in LOSSES[n].modes for n in names)
    return "binary" if num_classes == 2 and binary_ok else "multiclass"


def dataset_class_weights(dataset, num_classes: int, ignore: int | None) -> np.ndarray:
    """w_c = 1 / (C f_c) from the training masks' class frequencies f_c (0 for absent classes).

    Balanced data gives w = 1; the weighted pixel count of every present class is then equal.
    """
    try:
        _, freqs = class_frequencies(dataset, num_classes, ignore)  # (C,)
    except INPUT_ERRORS as e:
        raise InputError(str(e)) from e
    w = np.zeros(num_classes)
    present = freqs > 0
    w[present] = 1.0 / (num_classes * freqs[present])
    return w


def build_loss(cfg: Config, mode: str, ignore: int | None, weight: np.ndarray | None) -> torch.nn.Module:
    """``get_loss(supervised.loss, mode=..., ignore_index=..., weight=..., **supervised.loss_kwargs)``."""
    kwargs = dict(cfg.supervised.loss_kwargs)
    kwargs.setdefault("mode", mode)
    if ignore is not None:
        kwargs.setdefault("ignore_index", ignore)
    if weight is not None:
        kwargs["weight"] = weight.tolist()
    return get_loss(cfg.supervised.loss, **kwargs)
