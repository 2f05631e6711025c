"""Bad input fails loudly, naming the file and the problem (never a silent zero)."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from wnet.bsds import evaluate, evaluate_image, evaluate_predictions, load_ground_truth, load_prediction
from wnet.bsds.io import pair_files

FIX = Path(__file__).resolve().parent / "fixtures" / "bsds_bench"
GT = FIX / "groundTruth"


def test_prediction_without_ground_truth(tmp_path):
    shutil.copy(FIX / "segs" / "2018.mat", tmp_path / "999999.mat")
    with pytest.raises(FileNotFoundError, match=r"999999\.mat.*no ground truth"):
        evaluate(tmp_path, GT, workers=1)
    with pytest.raises(FileNotFoundError, match="999999"):
        evaluate_predictions({"999999": np.ones((481, 321), int)}, GT, workers=1)


def test_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*no .mat/.png/.npy files"):
        evaluate(tmp_path, GT, workers=1)
    with pytest.raises(ValueError, match="no predictions"):
        evaluate_predictions({}, GT)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate(tmp_path / "nope", GT)


def test_mat_without_expected_key(tmp_path):
    scipy.io.savemat(tmp_path / "2018.mat", {"labels": np.ones((4, 4))})
    with pytest.raises(ValueError, match=r"2018\.mat: no key 'ucm2' or 'segs' \(keys: \['labels'\]\)"):
        load_prediction(tmp_path / "2018.mat")
    with pytest.raises(ValueError, match="no key 'ucm2' or 'segs'"):
        evaluate(tmp_path, GT, workers=1)


def test_ground_truth_without_key(tmp_path):
    scipy.io.savemat(tmp_path / "gt.mat", {"Segmentation": np.ones((4, 4))})
    with pytest.raises(ValueError, match=r"gt\.mat: no key 'groundTruth'"):
        load_ground_truth(tmp_path / "gt.mat")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ground_truth(tmp_path / "missing.mat")


@pytest.mark.parametrize("shape", [(963, 641), (962, 643), (481 * 2, 321 * 2 + 1)])
def test_ucm2_of_wrong_size(tmp_path, shape):
    scipy.io.savemat(tmp_path / "2018.mat", {"ucm2": np.zeros(shape)})
    with pytest.raises(
        ValueError, match=r"2018\.mat.*ucm2 of shape .* is not \(2h\+1\)x\(2w\+1\) = \(963, 643\)"
    ):
        evaluate(tmp_path, GT, workers=1)


def test_size_mismatch(tmp_path):
    np.save(tmp_path / "2018.npy", np.ones((480, 321), dtype=np.int32))
    with pytest.raises(ValueError, match=r"2018\.npy.*\(480, 321\) != ground truth size \(481, 321\)"):
        evaluate(tmp_path, GT, workers=1)
    gts = load_ground_truth(GT / "2018.mat")
    with pytest.raises(
        ValueError, match=r"fits neither the ground truth \(481, 321\) nor a ucm2 \(963, 643\)"
    ):
        evaluate_image(np.zeros((100, 100)), gts)


def test_bad_values(tmp_path):
    gts = load_ground_truth(GT / "2018.mat")
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1\]"):
        evaluate_image(np.full((963, 643), 2.0), gts)
    with pytest.raises(ValueError, match="negative labels"):
        evaluate_image(-np.ones((481, 321), dtype=int), gts)
    with pytest.raises(ValueError, match="only bench='boundary'"):
        evaluate_image(np.zeros((481, 321)), gts, bench="all")
    with pytest.raises(ValueError, match="bench must be one of"):
        evaluate_image(np.ones((481, 321), dtype=int), gts, bench="regions")


def test_duplicate_prediction_ids(tmp_path):
    shutil.copy(FIX / "segs" / "2018.mat", tmp_path / "2018.mat")
    np.save(tmp_path / "2018.npy", np.ones((481, 321), dtype=np.int32))
    with pytest.raises(ValueError, match="two predictions for image '2018'"):
        evaluate(tmp_path, GT, workers=1)


def test_a_png_beside_a_mat_is_its_picture_not_a_second_prediction(tmp_path):
    shutil.copy(FIX / "segs" / "2018.mat", tmp_path / "2018.mat")
    cv2.imwrite(str(tmp_path / "2018.png"), np.zeros((321, 481), np.uint8))
    pairs = pair_files(tmp_path, GT)
    assert [(i, p.name) for i, p, _ in pairs] == [("2018", "2018.mat")]
