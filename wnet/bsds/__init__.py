"""A Python port of the BSDS500 benchmark: SC, PRI, VI (ODS/OIS) and boundary P/R/F (ODS/OIS/AP).

Reproduces the official MATLAB/C++ benchmark (``bench/`` of the BSDS500 January 2013 release;
Arbelaez, Maire, Fowlkes, Malik, TPAMI 2011). See docs/bsds.md.

    from wnet.bsds import evaluate_predictions
    summary = evaluate_predictions({"2018": ucm2, ...}, "BSDS500/groundTruth/test")
"""

from wnet.bsds.evaluate import ImageResult, evaluate, evaluate_image, evaluate_predictions
from wnet.bsds.io import load_ground_truth, load_prediction
from wnet.bsds.levels import Prediction, seg2bdry, thresholds, ucm2_to_segmentations

__all__ = [
    "ImageResult",
    "Prediction",
    "evaluate",
    "evaluate_image",
    "evaluate_predictions",
    "load_ground_truth",
    "load_prediction",
    "seg2bdry",
    "thresholds",
    "ucm2_to_segmentations",
]
