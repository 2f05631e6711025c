"""One tree of dataclasses with every default: the whole configuration of every task.

The defaults are the embedded quick run (small W-Net, procedural data, CPU); the paper-scale
settings live in ``experiments/configs/bsds500.yaml``. Reading YAML files and ``key=value``
overrides into the tree is :mod:`wnet.tasks.keys`; checking every value is
:mod:`wnet.tasks.validate` (``load_config`` does both).

The post-processing sections are the library's own parameter dataclasses
(:class:`wnet.postprocess.crf.CRFParams`, :class:`wnet.postprocess.hierarchy.HierarchyParams`,
:class:`wnet.postprocess.contours.OWTParams`): the tree composes the library, which never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wnet.postprocess import CRFParams, HierarchyParams, OWTParams


@dataclass
class ModelConfig:
    k: int = 8  # number of soft classes K output by U_Enc
    base_width: int = 8  # first module's channels; the paper's 64 gives 64-128-256-512-1024
    in_channels: int = 3  # 1 (grey) or 3 (RGB)
    dropout: float = 0.0  # the paper uses 0.65; 0 keeps the short default run stable
    separable: bool = True  # depthwise-separable convs in modules 2..8 (paper)
    padding: str = "zeros"  # 3x3 conv padding: zeros, reflect, replicate, circular (no border cue)


@dataclass
class NCutConfig:
    radius: float = 5.0  # r: neighbours at pixel distance >= r get no affinity
    sigma_x: float = 4.0  # spatial bandwidth, pixels
    sigma_i: float = 10.0  # intensity bandwidth on the 0-255 scale
    features: str = "rgb"  # 'rgb' or 'grey': F in the intensity kernel


@dataclass
class DataConfig:
    name: str = "procedural"  # procedural | folder | bsds500 | paired | voc
    root: str = ""  # dataset folder (unused by 'procedural')
    splits: list[str] = field(default_factory=lambda: ["train"])  # training splits
    eval_split: str = "val"  # the split scored and reported (val, test, ...; logs and tables name it)
    heldout: list[str] = field(default_factory=list)  # paired data: file-name globs (["0006R0_*"]) whose
    # training files are taken out of training and form the split 'heldout' (task=compare scores it too)
    image_size: int = 64  # training crop / resize (square), pixels
    eval_size: int = 0  # evaluation resize (0: full resolution)
    num_images: int = 256  # procedural: images in the training set
    num_eval_images: int = 16  # procedural: held-out images
    flip: bool = True  # random horizontal flips for training
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0])  # random rescale range
    num_workers: int = 0
    # paired image/mask folders (supervised)
    image_dir: str = "{split}"  # relative to root; {split} is replaced
    mask_dir: str = "{split}annot"
    classes_file: str = ""  # YAML/JSON with class names and palette
    num_classes: int = 0  # C; 0 = from classes_file
    ignore_index: int | None = None  # label excluded from losses and metrics; None: the class file's
    # (VOC: 255), -1: none
    binary_255: bool = False  # masks stored as 0/255 map to 0/1 (ISBI 2012)
    mask_threshold: int | None = (
        None  # binary masks: label = (mask > threshold); also admits lossy (JPEG) masks
    )
    resize_to_mask: bool = False  # resize each image to its mask's size when the aspect ratios agree
    val_fraction: float = 0.0  # split-less layouts (ISBI): the last fraction of files is 'val'
    download: bool = False  # VOC only: download when missing


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | sgd (wnet.tasks.build.OPTIMISERS)
    lr: float = 3e-3
    schedule: str = "step"  # step (lr_steps, lr_gamma) | cosine (wnet.tasks.build.SCHEDULERS)
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    lr_steps: list[int] = field(default_factory=list)  # divide lr by lr_gamma^-1 at these steps
    lr_gamma: float = 0.1  # the paper divides by 10


@dataclass
class TrainConfig:
    iterations: int = 200
    batch_size: int = 8
    mode: str = "alternating"  # alternating (paper's Algorithm 1) | joint
    ncut_weight: float = 1.0  # joint mode: weight of the N-Cut term
    recon_weight: float = 1.0  # joint mode: weight of the reconstruction term
    log_every: int = 10
    ckpt_every: int = 100
    eval_every: int = (
        0  # score the held-out set every N steps (0: supervised once per epoch, W-Net at the end)
    )
    seed: int = 0
    device: str = "auto"  # auto picks cuda, then mps, then cpu
    amp: str = "bf16"  # bf16 autocast on CUDA; 'none' disables
    num_samples: int = 8  # held-out images written as PNG panels after training
    threads: int = 0  # torch CPU threads (0: torch's default, all cores). Configs meant for a busy shared
    # machine set 1: there, OpenMP's spin-waiting made 2-thread steps 5x slower than 1-thread steps
    sync_bn: bool = False  # torchrun on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm)
    channels_last: bool | None = (
        None  # NHWC memory format; null: the device's measured best (docs/performance.md, bench_train.py)
    )
    compile: bool | None = None  # torch.compile the U-Nets; null: the device's measured best


@dataclass
class WandbConfig:
    mode: str = (
        "auto"  # auto (online if an API key is configured, else offline) | online | offline | disabled
    )
    project: str = "wnet"
    entity: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass
class SupervisedConfig:
    loss: Any = "ce"  # a name, "dice+ce", or {"dice": 1.0, "ce": 0.5}
    loss_kwargs: dict = field(default_factory=dict)
    class_weights: str = ""  # '' or 'inverse_frequency' (for wce-style losses)
    mode: str = "auto"  # auto (binary when C == 2 and the loss has a binary form) | binary | multiclass
    select_fraction: float = 0.0  # > 0: the last fraction of the training files (natural order) is kept
    # out of training as split 'select', which picks best.pt; 0: no selection (final weights, no best.pt)


@dataclass
class CompareConfig:
    losses: list[str] = field(default_factory=lambda: ["ce", "dice"])
    include_wnet: bool = True
    num_grid_images: int = 4
    weighted: list[str] = field(default_factory=lambda: ["wce"])  # get dataset inverse-frequency weights
    eval_batch_size: int = 4  # images per forward pass when scoring (images of equal size are batched)


@dataclass
class BSDSConfig:
    split: str = "test"  # split scored at the end
    nthresh: int = 99
    baselines: list[str] = field(default_factory=lambda: ["kmeans", "meanshift", "fh", "canny-owt-ucm"])
    max_images: int = 0  # 0: all
    workers: int = 0
    pad: int = 64  # px of mirror padding at full-resolution prediction (a border band of classes otherwise)
    external: dict[str, str] = field(default_factory=dict)  # extra rows: {name: folder of ucm2 .mat files}
    ucms: list[str] = field(default_factory=lambda: ["merge", "owt"])  # the W-Net hierarchies scored, one row
    # each: merge (hierarchy.*), owt (OWT-UCM on soft-map contours, owt.*), alg2 (the paper's Alg. 2: gPb on
    # the CRF boundaries), wnet+ucm (the paper's W-Net+ucm); the last two compute gPb of every image
    gpb_cache: str = (
        ""  # folder keeping each image's gPb across rows, seeds and runs ("": <out_dir>/gpb_cache)
    )


@dataclass
class SegmentConfig:
    """``task=segment``: a trained W-Net (``checkpoint=``; none: the shipped ``bsds500_cpu``) applied to any images."""

    input: str = ""  # an image file, a folder (searched recursively) or a glob ("photos/**/*.png")
    output: str = ""  # folder of the results: <output>/<kind>/<sub-folders>/<stem>.<ext>, index.csv
    outputs: list[str] = field(default_factory=lambda: ["labels", "crf", "ucm2", "overlay"])
    # any of labels (argmax), crf (argmax after the CRF), ucm2 (hierarchy, .mat + picture), overlay,
    # probs (float16 soft maps, .npz; large: K x H x W per image)
    max_pixels: int = 1_048_576  # most pixels in one forward pass (padding and batch included);
    # larger images run in overlapping tiles with blended seams. A pass takes ~0.9 KB per pixel with
    # the bsds500_cpu W-Net: with post_max_pixels, a 12 MP photo stays under 3 GB
    post_max_pixels: int = 524_288  # most pixels the CRF and the hierarchy work on: larger images
    # are post-processed on a grid downscaled f times (block means; wnet/postprocess/working.py),
    # the CRF labels upsampled to full size; the dense CRF takes ~2 KB per pixel at K=64
    full_ucm2: bool = False  # ucm2 at the image's size when it was built on a downscaled grid
    # (each working pixel an f x f block); false: at the working grid's size (smaller files)
    overlap: int = 64  # px of overlap between neighbouring tiles (blended with linear ramps)
    pad: int = 64  # px of mirror padding (and of context around each tile), as in task=bsds
    batch_size: int = 8  # images of the same size per forward pass (within max_pixels)
    skip_done: bool = True  # skip images whose outputs all exist (a rerun continues an interrupted one)
    num_samples: int = 8  # images in the W&B table of samples (0: no table)


@dataclass
class Config:
    task: str = "unsupervised"  # unsupervised | supervised | compare | bsds | segment
    name: str = "default"  # run folder: <out_dir>/<name>
    out_dir: str = "runs"
    resume: str = ""  # checkpoint path or run folder to continue; 'auto': this run's last.pt if there is one
    overwrite: bool = (
        False  # replace the run folder <out_dir>/<name> instead of taking a fresh -2, -3 ... suffix
    )
    checkpoint: str = ""  # weights to load (bsds/evaluation) instead of training; the model of task=segment
    # (empty there: the shipped pretrained bsds500_cpu W-Net, wnet/weights/, docs/model_card.md)
    ucm: str = "owt"  # the pipeline's hierarchy (task=segment's ucm2, task=bsds's headline bsds/<metric>):
    # owt (OWT-UCM on soft-map contours: fast, label-free; PRI ODS .781 vs .755 for merge on BSDS val,
    # docs/postprocessing.md) | merge (region merging of the argmax components) | alg2 (the paper's Alg. 2:
    # gPb of the image on the CRF boundaries; gPb's weights were fitted with BSDS labels) | wnet+ucm
    model: ModelConfig = field(default_factory=ModelConfig)
    ncut: NCutConfig = field(default_factory=NCutConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    supervised: SupervisedConfig = field(default_factory=SupervisedConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    crf: CRFParams = field(default_factory=CRFParams)
    hierarchy: HierarchyParams = field(default_factory=HierarchyParams)
    owt: OWTParams = field(default_factory=OWTParams)  # task=bsds: the W-Net + CRF + OWT-UCM row
    bsds: BSDSConfig = field(default_factory=BSDSConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
