"""W-Net's post-processing: soft class maps + image -> refined maps and a hierarchy (ucm2).

One function runs every stage (:func:`postprocess`, :func:`postprocess_many` for a batch in a
process pool), given the stages' parameters (:class:`Stages`):

* refinement (:mod:`~wnet.postprocess.crf`, :class:`CRFParams`): dense CRF, windowed torch CRF or none;
* hierarchies (:data:`HIERARCHIES`): ``owt``, the oriented watershed + UCM (:mod:`~wnet.postprocess.owt`)
  of the W-Net contour signal (:mod:`~wnet.postprocess.contours`, :class:`OWTParams`), and ``merge``,
  region merging of the argmax components (:mod:`~wnet.postprocess.hierarchy`,
  :class:`HierarchyParams`); both share the greedy merging of :mod:`~wnet.postprocess.ucm`;
* :mod:`~wnet.postprocess.layouts`: the image and soft-map layouts every stage accepts.

    from wnet.postprocess import Stages, postprocess
    out = postprocess(probs, image, Stages(), ucms=("owt", "merge"))  # out.refined, out.ucm2["owt"]
"""

from wnet.postprocess.contours import OWTParams, canny_contours, wnet_contours, wnet_owt_ucm2
from wnet.postprocess.crf import CRFParams, refine
from wnet.postprocess.hierarchy import HierarchyParams, flat_labels, to_ucm2
from wnet.postprocess.owt import contours2ucm
from wnet.postprocess.pipeline import HIERARCHIES, Result, Stages, postprocess, postprocess_many

__all__ = [
    "HIERARCHIES",
    "CRFParams",
    "HierarchyParams",
    "OWTParams",
    "Result",
    "Stages",
    "canny_contours",
    "contours2ucm",
    "flat_labels",
    "postprocess",
    "postprocess_many",
    "refine",
    "to_ucm2",
    "wnet_contours",
    "wnet_owt_ucm2",
]
