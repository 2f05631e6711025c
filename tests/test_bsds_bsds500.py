"""Full-resolution checks on real BSDS500 images and hierarchies (dev data in ../shared; slow)."""

import numpy as np
import pytest
from helpers import shared_path

from wnet.bsds import evaluate_image, evaluate_predictions, load_ground_truth, load_prediction


@pytest.mark.slow
@pytest.mark.parametrize("image", ["101087", "216081"])  # 216081: the slowest gPb val image
def test_fast_equals_literal_99_thresholds(image):
    root = shared_path("BSDS500")
    gts = load_ground_truth(root / "groundTruth" / "val" / f"{image}.mat")
    ucm2 = load_prediction(shared_path("BSDS500", "ucm2_gpb", "val") / f"{image}.mat")  # official gPb-owt-ucm
    fast = evaluate_image(ucm2, gts, nthresh=99)
    slow = evaluate_image(ucm2, gts, nthresh=99, fast=False)
    for k, v in vars(fast.boundary).items():
        np.testing.assert_array_equal(v, getattr(slow.boundary, k), err_msg=k)
    for k, v in vars(fast.region).items():
        if isinstance(v, np.ndarray):
            np.testing.assert_allclose(v, getattr(slow.region, k), rtol=1e-12, err_msg=k)


@pytest.mark.slow
def test_annotator_as_prediction_scores_high():
    """An annotator's own segmentation, scored against all annotators, covers well."""
    gt_dir = shared_path("BSDS500", "groundTruth", "test")
    ids = sorted(p.stem for p in gt_dir.glob("*.mat"))[:3]
    preds = {i: load_ground_truth(gt_dir / f"{i}.mat")[0][0] for i in ids}
    s = evaluate_predictions(preds, gt_dir, nthresh=99, workers=2)
    assert s["n_levels"] == 1 and s["n_images"] == 3
    assert 0.5 < s["sc_ods"] <= 1 and 0.7 < s["pri_ods"] <= 1 and s["vi_ods"] >= 0
    assert s["sc_ods"] == s["sc_ois"]  # one level: ODS and OIS coincide
    assert 0.5 < s["bdry_ods_f"] <= 1
