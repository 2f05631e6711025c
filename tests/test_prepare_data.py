"""data/prepare_isbi.py on generated TIFF stacks, then the loader on its output."""

import subprocess
import sys

import cv2
import numpy as np
from helpers import ROOT

from wnet.datasets.paired import PairedFolderDataset

SCRIPT = ROOT / "data" / "prepare_isbi.py"


def _stacks(tmp_path, n=3, bad_label=False):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (12, 10), dtype=np.uint8) for _ in range(n)]
    labels = [np.where(rng.random((12, 10)) < 0.3, 0, 255).astype(np.uint8) for _ in range(n)]
    if bad_label:
        labels[1][0, 0] = 128
    vol, lab = tmp_path / "train-volume.tif", tmp_path / "train-labels.tif"
    assert cv2.imwritemulti(str(vol), images) and cv2.imwritemulti(str(lab), labels)
    return vol, lab, images, labels


def _prepare(vol, lab, out):
    cmd = [sys.executable, str(SCRIPT), "--volume", str(vol), "--labels", str(lab), "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_slices_round_trip_into_the_paired_loader(tmp_path):
    vol, lab, images, labels = _stacks(tmp_path)
    r = _prepare(vol, lab, tmp_path / "isbi")
    assert r.returncode == 0, r.stderr
    ds = PairedFolderDataset(
        tmp_path / "isbi",
        "all",
        image_dir="image",
        mask_dir="label",
        num_classes=2,
        binary_255=True,
        in_channels=1,
    )
    assert len(ds) == 3
    for i in range(3):
        item = ds[i]
        np.testing.assert_array_equal((item["image"][0].numpy() * 255).round().astype(np.uint8), images[i])
        np.testing.assert_array_equal(item["label"].numpy(), labels[i] // 255)


def test_a_label_value_other_than_0_and_255_is_refused_naming_the_slice(tmp_path):
    vol, lab, _, _ = _stacks(tmp_path, bad_label=True)
    r = _prepare(vol, lab, tmp_path / "o")
    assert r.returncode == 1
    assert "slice 1 has label value 128" in r.stderr and "Traceback" not in r.stderr
