"""Config -> objects: datasets, models, losses, optimisers and schedulers.

The one place that reads the config tree to call the library, so every task (and every method
of a comparison) gets exactly the same images, splits, transforms and architectures.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.utils.data import DataLoader

from wnet import contours, hierarchy
from wnet.datasets.classes import class_frequencies, load_ignore_index
from wnet.datasets.images import ImageFolder, bsds_files, list_images
from wnet.datasets.paired import PairedFolderDataset
from wnet.datasets.procedural import ProceduralShapes
from wnet.datasets.sampling import DatasetView, EpochSampler, SeededItems
from wnet.datasets.transforms import make_transforms
from wnet.datasets.voc import VOC_IGNORE_INDEX, VOCSegmentation
from wnet.losses import LOSSES, get_loss, parse_spec
from wnet.model import SegmentationUNet, WNet
from wnet.tasks import distributed
from wnet.tasks.config import Config, ModelConfig, OptimConfig
from wnet.tasks.errors import InputError

LABELLED = ("paired", "voc")
UNLABELLED = ("procedural", "folder", "bsds500")


# ----------------------------------------------------------------------------- data
INPUT_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError)  # what the loaders raise about a file


class Checked(DatasetView):
    """A dataset whose loading errors (a corrupt image, a mask of the wrong size, ...) are user errors:
    the loaders' messages name the file, and :class:`InputError` prints them as one line."""

    def __getitem__(self, index):
        try:
            return self.dataset[index]
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


@_inputs
def build_labelled(cfg: Config, split: str, train: bool):
    """A labelled dataset for ``split`` with training augmentation (``train``) or the eval resize.

    Items are ``{"image": (C, H, W) float in [0, 1], "label": (H, W) int64, "name": str}``.
    """
    d = cfg.data
    ign = ignore_index(cfg)
    size = d.image_size if train else d.eval_size
    tf = make_transforms(train, size, scale=tuple(d.scale), flip=d.flip and train, ignore_index=ign)
    if d.name == "paired":
        if not d.root:
            raise ValueError("data.root must be set for data.name=paired")
        return PairedFolderDataset(
            d.root,
            split,
            image_dir=d.image_dir,
            mask_dir=d.mask_dir,
            num_classes=d.num_classes,
            ignore_index=ign,
            binary_255=d.binary_255,
            transform=tf,
            in_channels=cfg.model.in_channels,
            val_fraction=d.val_fraction,
            classes_file=d.classes_file or None,
            mask_threshold=d.mask_threshold,
            resize_to_mask=d.resize_to_mask,
        )
    if d.name == "voc":
        return VOCSegmentation(
            d.root, split, download=d.download, transform=tf, in_channels=cfg.model.in_channels
        )
    raise ValueError(f"data.name={d.name!r} is not labelled; expected one of {LABELLED}")


@_inputs
def build_unlabelled(cfg: Config):
    """(train set, held-out set) for W-Net training; items carry ``image`` (and maybe ``label``)."""
    d, c = cfg.data, cfg.model.in_channels
    if d.name == "procedural":
        train = ProceduralShapes(d.num_images, d.image_size, cfg.train.seed, c, flip=d.flip)
        held = ProceduralShapes(d.num_eval_images, d.eval_size or d.image_size, cfg.train.seed + 1_000_003, c)
        return train, held
    if d.name in LABELLED:  # labelled data, labels unused for training (kept for evaluation)
        return build_labelled(cfg, d.splits[0], train=True), build_labelled(cfg, d.eval_split, train=False)
    train_tf = make_transforms(True, d.image_size, scale=tuple(d.scale), flip=d.flip)
    eval_tf = make_transforms(False, d.eval_size)
    if d.name == "bsds500":
        files = [f for split in d.splits for f in bsds_files(d.root, split)[0]]
        held_imgs, held_gts = bsds_files(d.root, d.eval_split)
        n = d.num_eval_images  # held-out images for losses and sample panels (the benchmark scores all)
        return ImageFolder(files, c, train_tf), ImageFolder(held_imgs[:n], c, eval_tf, gt_paths=held_gts[:n])
    if d.name == "folder":
        files = list_images(d.root)
        n_held = max(1, min(len(files) // 10, d.num_eval_images))  # last files are held out
        return ImageFolder(files[:-n_held] or files, c, train_tf), ImageFolder(files[-n_held:], c, eval_tf)
    raise ValueError(f"data.name={d.name!r} is not a dataset; use one of {UNLABELLED + LABELLED}")


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
        pin_memory=torch.cuda.is_available() and cfg.train.device != "cpu",  # faster host-to-GPU copies
    )


def eval_batch_size(cfg: Config) -> int:
    """Images per evaluation forward pass: 1 at full resolution (sizes may differ), else the training batch."""
    return cfg.train.batch_size if cfg.data.eval_size else 1


# ----------------------------------------------------------------------------- models
def build_wnet(m: ModelConfig) -> WNet:
    return WNet(m.k, m.in_channels, m.base_width, m.dropout, m.separable, m.padding)


def build_unet(m: ModelConfig, out_channels: int) -> SegmentationUNet:
    """U_Enc's architecture with ``out_channels`` logits (C, or 1 in binary mode)."""
    return SegmentationUNet(m.in_channels, out_channels, m.base_width, m.dropout, m.separable, m.padding)


# measured with experiments/bench_train.py (README, "Performance"); CUDA: not measured here yet
SPEED_DEFAULTS = {
    # CPU, measured with experiments/bench_train.py (README "Performance"): channels-last gained
    # ~1.1x at the quick scale but lost (0.92x) at bsds500_cpu.yaml's, the scale CPU users train at;
    # torch.compile did not pay for its compile time in runs of this length
    "cpu": {"channels_last": False, "compile": False},
    # CUDA: not yet measured here (no GPU lent); channels-last is PyTorch's advice for conv nets under
    # bf16 autocast. experiments/gpu_check.sh measures both options on the first GPU lent
    "cuda": {"channels_last": True, "compile": False},
}


def speed_options(cfg: Config, device: torch.device) -> dict[str, bool]:
    """``train.channels_last`` / ``train.compile``, where null takes the device's measured default."""
    defaults = SPEED_DEFAULTS.get(device.type, {"channels_last": False, "compile": False})
    t = cfg.train
    return {k: defaults[k] if getattr(t, k) is None else getattr(t, k) for k in ("channels_last", "compile")}


def fast_modules(modules, d, cfg: Config, device: torch.device) -> list:
    """Each module in its training form: channels-last weights (in place), DDP-wrapped under torchrun,
    compiled; the returned callables are what the step runs (checkpoints keep the plain modules)."""
    opts = speed_options(cfg, device)
    out = []
    for m in modules:
        if opts["channels_last"]:
            m.to(memory_format=torch.channels_last)
        m = distributed.wrap(m, d, cfg.train.sync_bn)
        out.append(torch.compile(m) if opts["compile"] else m)
    return out


def pipeline_ucm2(probs: np.ndarray, image: np.ndarray, cfg: Config) -> np.ndarray:
    """The ucm2 of the hierarchy ``cfg.ucm`` picks: OWT-UCM of the W-Net contours (``owt.*``) or
    region merging (``hierarchy.*``).

    Shape: probs (K, H, W) (CRF-refined), image (H, W, C) -> (2H+1, 2W+1) float64 in [0, 1]."""
    if cfg.ucm == "owt":
        return contours.wnet_owt_ucm2(probs, image, cfg.owt)
    return hierarchy.to_ucm2(probs, image, cfg.hierarchy)


def build_optimizer(o: OptimConfig, params) -> torch.optim.Optimizer:
    """Adam or SGD with momentum."""
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ValueError(f"optim.name must be 'adam' or 'sgd', got {o.name!r}")


def build_scheduler(o: OptimConfig, optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """Step decay: lr is multiplied by ``lr_gamma`` at each step in ``lr_steps`` (the paper divides by 10)."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(o.lr_steps), gamma=o.lr_gamma)


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
