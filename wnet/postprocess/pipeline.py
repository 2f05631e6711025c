"""W-Net's post-processing as one function: soft maps + image -> refined maps and hierarchies.

    out = postprocess(probs, image, Stages(crf=CRFParams(kind="dense")), ucms=("owt",))
    out.refined      # (K, H, W) after the CRF (the input itself when crf.kind is none)
    out.ucm2["owt"]  # (2H+1, 2W+1) ultrametric contour map, the layout the BSDS benchmark reads

The stages, in the order of Xia & Kulis 2017 (sec. 4):

1. **refinement** (:func:`wnet.postprocess.crf.refine`, the one place that picks the CRF):
   the dense CRF, the windowed torch CRF or none (``CRFParams.kind``);
2. **hierarchies** of the refined maps, by name (:data:`HIERARCHIES`): ``owt`` (oriented
   watershed + UCM of a contour signal of the soft maps and the image,
   :mod:`wnet.postprocess.contours`, ``OWTParams``), ``merge`` (region merging of the argmax
   components, :mod:`wnet.postprocess.hierarchy`, ``HierarchyParams``), and the paper's two,
   built on gPb of the image (:mod:`wnet.postprocess.paper`, ``GPbParams``): ``alg2`` (gPb on the
   CRF argmax boundaries, then OWT-UCM) and ``wnet+ucm`` (those boundaries combined with
   gPb-owt-ucm). A new hierarchy is one entry of that table.

:func:`postprocess_many` runs it over several images in a process pool: the one place where the
post-processing is batched. Every stage is a pure function of its inputs, so the result does not
depend on the number of workers.

Memory: above ``max_pixels`` (or when the soft maps come already reduced to the image's working
grid), every stage runs on a grid downscaled by an integer factor (:mod:`wnet.postprocess.working`);
``Result.scale`` says by how much. The ucm2 is then the working grid's:
:func:`~wnet.postprocess.working.upsample_ucm2` brings it to the image's size.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from wnet.postprocess import paper
from wnet.postprocess.contours import OWTParams, wnet_owt_ucm2
from wnet.postprocess.crf import CRFParams, refine
from wnet.postprocess.gpb import GPbParams
from wnet.postprocess.gpb.cache import cached_gpb
from wnet.postprocess.hierarchy import HierarchyParams, flat_labels, to_ucm2
from wnet.postprocess.layouts import as_probs, as_uint8_image
from wnet.postprocess.working import block_mean, factor_between, image_at, scale_crf, work_factor


@dataclass
class Stages:
    """The parameters of every stage (the ``crf``, ``hierarchy`` and ``owt`` config sections)."""

    crf: CRFParams = field(default_factory=CRFParams)
    hierarchy: HierarchyParams = field(default_factory=HierarchyParams)
    owt: OWTParams = field(default_factory=OWTParams)
    gpb: GPbParams = field(default_factory=GPbParams)  # the paper's hierarchies' image cues
    gpb_cache: str = ""  # folder keeping each image's gPb between runs ("": computed every time)
    combination: str = paper.COMBINATION  # how wnet+ucm combines its two maps (paper.COMBINATIONS)


class ImageCues:
    """What hierarchies compute from the image alone, once per image: gPb (H, W, 8), and the
    gPb-owt-ucm ucm2 built on it (several hierarchies of one image share them)."""

    def __init__(self, image, stages: Stages, gpb=None):
        self.image, self.stages, self._gpb, self._gpb_ucm2 = image, stages, gpb, None

    @property
    def gpb(self) -> np.ndarray:
        if self._gpb is None:
            self._gpb = cached_gpb(self.image, self.stages.gpb, self.stages.gpb_cache or None)
        return self._gpb

    @property
    def gpb_ucm2(self) -> np.ndarray:
        if self._gpb_ucm2 is None:
            self._gpb_ucm2 = paper.gpb_ucm2(self.gpb)
        return self._gpb_ucm2


# name -> ucm2 of the refined maps (K, H, W), the image (H, W, C) and its cues; (2H+1, 2W+1) in [0, 1]
HIERARCHIES: dict[str, Callable[[np.ndarray, np.ndarray, Stages, ImageCues], np.ndarray]] = {
    "owt": lambda refined, image, stages, cues: wnet_owt_ucm2(refined, image, stages.owt),
    "merge": lambda refined, image, stages, cues: to_ucm2(refined, image, stages.hierarchy),
    "alg2": lambda refined, image, stages, cues: paper.alg2_ucm2(refined, cues.gpb),
    "wnet+ucm": lambda refined, image, stages, cues: paper.wnet_ucm_ucm2(
        refined, cues.gpb, how=stages.combination, gpb_ucm=cues.gpb_ucm2
    ),
}


@dataclass
class Result:
    """One image's post-processing. ``regions``: the connected components of the argmax before
    (``raw``) and after (``refined``) the CRF, when asked for; ``seconds``: per stage; ``scale``: the
    working grid's factor f (1: the image's own size; else (h, w) = (ceil(H / f), ceil(W / f)))."""

    refined: np.ndarray  # (K, h, w) float32 on the working grid
    ucm2: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (2h+1, 2w+1), or full size
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # raw / refined -> (h, w) int32
    seconds: dict[str, float] = field(default_factory=dict)  # crf, hierarchy
    scale: int = 1


def check_ucms(ucms) -> tuple[str, ...]:
    """The hierarchy names, each one of :data:`HIERARCHIES`."""
    for name in ucms:
        if name not in HIERARCHIES:
            raise ValueError(f"unknown hierarchy {name!r}; expected one of {', '.join(HIERARCHIES)}")
    return tuple(ucms)


def _regions(probs: np.ndarray) -> np.ndarray:
    """Argmax components, nothing absorbed (the flat label maps the benchmark scores)."""
    no_absorb = dataclasses.replace(HierarchyParams(), min_region=1)
    return flat_labels(probs, None, no_absorb).astype(np.int32)


def _working(probs, image, max_pixels: int | None):
    """(soft maps, image, factor) on the working grid: the soft maps reduced when above ``max_pixels``
    (or given already reduced), the image brought to their grid; at factor 1 the inputs as they are."""
    p = as_probs(probs)
    if max_pixels and p.shape[1] * p.shape[2] > max_pixels:
        p = block_mean(p, work_factor(p.shape[1], p.shape[2], max_pixels))
    rgb = as_uint8_image(image)  # (H, W, 3): the full size
    f = factor_between(p.shape[1:], rgb.shape[:2])
    return p, (image if f == 1 else image_at(rgb, f)), f


def postprocess(
    probs,
    image,
    stages: Stages,
    ucms=("owt",),
    regions: bool = False,
    refined=None,
    gpb=None,
    max_pixels: int | None = None,
) -> Result:
    """Refine one image's soft maps with the CRF, then build the hierarchies named in ``ucms``.

    Args:
        probs: soft class maps S, each pixel's K values summing to 1 (numpy or torch), at the
            image's size or already on its working grid (:mod:`wnet.postprocess.working`).
        image: the image at full size, any layout of :func:`wnet.postprocess.layouts.as_uint8_image`.
        stages: the parameters of the CRF and of each hierarchy.
        ucms: names in :data:`HIERARCHIES`, in the order wanted.
        regions: also return the argmax components before and after the CRF.
        refined: maps already refined (by a batched torch CRF), on the working grid: the CRF stage is skipped.
        gpb: the image's oriented gPb (H, W, 8) when already computed (else computed on first use);
            at the image's size, or on the working grid when the soft maps are.
        max_pixels: the most pixels a stage works on (None: no limit); larger soft maps are reduced.

    Shape:
        probs: (K, H, W) or (K, h, w); image: (H, W[, C]); see :class:`Result`.

    References:
        Xia & Kulis 2017, sec. 4; Arbelaez et al. 2011, sec. 4 (OWT-UCM).
    """
    p, im, f = _working(probs, image, max_pixels)
    st = stages if f == 1 else dataclasses.replace(stages, crf=scale_crf(stages.crf, f))
    t0 = time.perf_counter()
    q = as_probs(refined) if refined is not None else as_probs(refine(p, im, st.crf))
    out = Result(refined=q, seconds={"crf": time.perf_counter() - t0}, scale=f)
    t1 = time.perf_counter()
    cues = ImageCues(im, st, gpb)
    for name in check_ucms(ucms):
        out.ucm2[name] = HIERARCHIES[name](q, im, st, cues)
    out.seconds["hierarchy"] = time.perf_counter() - t1
    if regions:
        out.regions = {"raw": _regions(p), "refined": _regions(q)}
    return out


def _job(args) -> Result:
    return postprocess(*args)


def postprocess_many(
    probs_list,
    images,
    stages: Stages,
    ucms=("owt",),
    regions: bool = False,
    workers: int | None = None,
    max_pixels: int | None = None,
) -> list[Result]:
    """:func:`postprocess` over several images (sizes may differ), in a process pool.

    Args:
        workers: processes; ``None`` takes ``stages.crf.workers``; 0 means all cores, 1 a plain loop.
            The torch CRF runs in this process first (worker processes never touch torch),
            then the hierarchies run in the pool.
        max_pixels: as :func:`postprocess`; soft maps are reduced here, before the pool.

    Returns:
        one :class:`Result` per image, in the input's order.
    """
    if len(probs_list) != len(images):
        raise ValueError(f"postprocess_many: {len(probs_list)} soft maps but {len(images)} images")
    check_ucms(ucms)
    workers = stages.crf.workers if workers is None else workers
    if workers < 0:
        raise ValueError(f"postprocess_many: workers must be >= 0, got {workers}")
    workers = min(workers or os.cpu_count() or 1, len(probs_list))
    # worker processes get numpy on the working grid, never torch tensors
    work = [_working(p, im, max_pixels) for p, im in zip(probs_list, images, strict=True)]
    refined: list = [None] * len(work)
    if stages.crf.kind == "torch":
        t0 = time.perf_counter()
        refined = [refine(p, im, scale_crf(stages.crf, f)) for p, im, f in work]
        per_image = (time.perf_counter() - t0) / max(len(work), 1)
    jobs = [
        (w[0], im, stages, ucms, regions, r, None, max_pixels)
        for w, im, r in zip(work, images, refined, strict=True)
    ]
    del work
    if workers <= 1:
        results = [_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_job, jobs))
    if stages.crf.kind == "torch":
        for r in results:
            r.seconds["crf"] = per_image
    return results
