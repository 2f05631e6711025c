"""Bad input fails loudly, naming the file and the problem (never a silent zero)."""

import io
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from helpers import ENV

from wnet.bsds import evaluate, evaluate_image, evaluate_predictions, load_ground_truth, load_prediction
from wnet.bsds.io import pair_files
from wnet.bsds.levels import PredictionError

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


# ----------------------------------------------------------------------------- garbage files
def _mat_bytes(data: dict) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, data)
    return buf.getvalue()


_UCM2 = _mat_bytes({"ucm2": np.zeros((963, 643))})
_V73 = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x02IM" + b"\x89HDF\r\n\x1a\n"
GARBAGE = {  # name -> the bytes of 2018.mat; scipy's own messages for the first six named no file
    "empty": b"",
    "random bytes": np.random.default_rng(0).bytes(600),
    "text": b"hello, not a mat file\n" * 5,
    "truncated header": _UCM2[:200],
    "truncated data": _UCM2[: len(_UCM2) // 2],
    "MATLAB v7.3 (HDF5)": _V73 + bytes(600),
    "ucm2 is a string": _mat_bytes({"ucm2": "abc"}),
    "ucm2 is a struct": _mat_bytes({"ucm2": {"a": 1}}),
    "ucm2 is complex": _mat_bytes({"ucm2": np.zeros((963, 643)) + 1j}),
    "ucm2 is NaN": _mat_bytes({"ucm2": np.full((963, 643), np.nan)}),
    "ucm2 is 3-D": _mat_bytes({"ucm2": np.zeros((2, 963, 643))}),
    "segs is an empty cell": _mat_bytes({"segs": np.empty((1, 0), dtype=object)}),
}


@pytest.mark.parametrize("kind", GARBAGE)
def test_a_garbage_mat_is_an_error_naming_the_file(tmp_path, kind):
    (tmp_path / "2018.mat").write_bytes(GARBAGE[kind])
    with pytest.raises(PredictionError) as e:
        evaluate(tmp_path, GT, workers=1)
    assert str(e.value).startswith(f"{tmp_path / '2018.mat'}") and "\n" not in str(e.value)
    with pytest.raises(PredictionError, match=str(tmp_path / "2018.mat")):  # as ground truth too
        load_ground_truth(tmp_path / "2018.mat")


def test_the_command_line_says_one_line_and_exits_3(tmp_path):
    (tmp_path / "2018.mat").write_bytes(GARBAGE["text"])
    cmd = [sys.executable, "-m", "wnet.bsds", str(tmp_path), str(GT), "--workers", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {tmp_path / '2018.mat'}: not a MATLAB .mat file this benchmark can read (a v7.3/HDF5 "
        "file, truncated, or not a .mat at all; "
    )


def test_label_0_is_no_region_for_the_covering_and_is_warned_about():
    """The official covering reads label 0 as unlabelled (regionprops): a whole-image region numbered 0
    covers nothing. Not an error (the official code allows it), but never silent."""
    gt_id = sorted(p.stem for p in GT.glob("*.mat"))[0]
    h, w = load_ground_truth(GT / f"{gt_id}.mat")[0][0].shape
    with pytest.warns(UserWarning, match="1 of 1 label-map predictions use label 0"):
        zero = evaluate_predictions({gt_id: np.zeros((h, w), int)}, GT, workers=1, bench="region")
    one = evaluate_predictions({gt_id: np.ones((h, w), int)}, GT, workers=1, bench="region")
    assert zero["segs_with_label_0"] == 1 and one["segs_with_label_0"] == 0
    assert zero["sc_ods"] == 0 and one["sc_ods"] > 0.05  # the same partition, numbered from 0 and from 1
    assert zero["pri_ods"] == one["pri_ods"] and zero["vi_ods"] == one["vi_ods"]  # one class either way
