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
from wnet.postprocess.layouts import as_probs


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
        refined, cues.gpb, gpb_ucm=cues.gpb_ucm2
    ),
}


@dataclass
class Result:
    """One image's post-processing. ``regions``: the connected components of the argmax before
    (``raw``) and after (``refined``) the CRF, when asked for; ``seconds``: per stage."""

    refined: np.ndarray  # (K, H, W) float32
    ucm2: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (2H+1, 2W+1)
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # raw / refined -> (H, W) int32
    seconds: dict[str, float] = field(default_factory=dict)  # crf, hierarchy


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


def postprocess(
    probs, image, stages: Stages, ucms=("owt",), regions: bool = False, refined=None, gpb=None
) -> Result:
    """Refine one image's soft maps with the CRF, then build the hierarchies named in ``ucms``.

    Args:
        probs: soft class maps S, each pixel's K values summing to 1 (numpy or torch).
        image: the image, any layout of :func:`wnet.postprocess.layouts.as_uint8_image`.
        stages: the parameters of the CRF and of each hierarchy.
        ucms: names in :data:`HIERARCHIES`, in the order wanted.
        regions: also return the argmax components before and after the CRF.
        refined: maps already refined (by a batched torch CRF): the CRF stage is skipped.
        gpb: the image's oriented gPb (H, W, 8) when already computed (else computed on first use).

    Shape:
        probs: (K, H, W); image: (H, W[, C]); see :class:`Result`.

    References:
        Xia & Kulis 2017, sec. 4; Arbelaez et al. 2011, sec. 4 (OWT-UCM).
    """
    p = as_probs(probs)
    t0 = time.perf_counter()
    q = as_probs(refined) if refined is not None else as_probs(refine(p, image, stages.crf))
    out = Result(refined=q, seconds={"crf": time.perf_counter() - t0})
    t1 = time.perf_counter()
    cues = ImageCues(image, stages, gpb)
    for name in check_ucms(ucms):
        out.ucm2[name] = HIERARCHIES[name](q, image, stages, cues)
    out.seconds["hierarchy"] = time.perf_counter() - t1
    if regions:
        out.regions = {"raw": _regions(p), "refined": _regions(q)}
    return out


def _job(args) -> Result:
    return postprocess(*args)


def postprocess_many(
    probs_list, images, stages: Stages, ucms=("owt",), regions: bool = False, workers: int | None = None
) -> list[Result]:
    """:func:`postprocess` over several images (sizes may differ), in a process pool.

    Args:
        workers: processes; ``None`` takes ``stages.crf.workers``; 0 means all cores, 1 a plain loop.
            The torch CRF runs batched in this process first (worker processes never touch torch),
            then the hierarchies run in the pool.

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
    probs_np = [as_probs(p) for p in probs_list]  # worker processes get numpy, never torch tensors
    refined: list = [None] * len(probs_np)
    if stages.crf.kind == "torch":
        t0 = time.perf_counter()
        refined = [refine(p, im, stages.crf) for p, im in zip(probs_np, images, strict=True)]
        per_image = (time.perf_counter() - t0) / max(len(probs_np), 1)
    jobs = [(p, im, stages, ucms, regions, r) for p, im, r in zip(probs_np, images, refined, strict=True)]
    if workers <= 1:
        results = [_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_job, jobs))
    if stages.crf.kind == "torch":
        for r in results:
            r.seconds["crf"] = per_image
    return results
