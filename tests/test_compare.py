"""Shared evaluation (Hungarian path) and a tiny end-to-end comparison on generated data."""

import csv

import cv2
import numpy as np
import pytest
import torch
from helpers import paired_overrides, write_paired

from wnet.evaluation import evaluate_labelled
from wnet.tasks import compare
from wnet.tasks.validate import load_config


class LabelSet(torch.utils.data.Dataset):
    """Items whose 'image' IS the label map (as float), so a predict_fn can derive any labelling from it."""

    def __init__(self, labels: list[np.ndarray]):
        self.labels = [torch.as_tensor(label) for label in labels]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        y = self.labels[i]
        return {"image": y[None].float(), "label": y, "name": str(i)}


LABELS = [np.array([[0, 0, 1, 1], [2, 2, 1, 1]]), np.array([[2, 2, 2, 0], [0, 0, 1, 1]])]


@pytest.mark.parametrize("perm", [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
def test_permuted_clusters_score_perfectly_after_matching(perm):
    ds = LabelSet(LABELS)
    table = torch.tensor(perm)

    def predict(x):  # cluster id = perm[class]
        return table[x[:, 0].long()]

    out = evaluate_labelled(predict, ds, num_classes=3, num_clusters=3, batch_size=2)
    assert out["scores"]["miou"] == pytest.approx(1.0)
    assert out["scores"]["pixel_accuracy"] == pytest.approx(1.0)
    inverse = np.argsort(perm)  # cluster k -> class inverse[k]
    np.testing.assert_array_equal(out["mapping"], inverse)
    assert out["cm"].sum() == 16


def test_unmatched_clusters_stay_errors():
    # 4 clusters for 3 classes: class 1's right-hand pixels of image 0 get an extra cluster 3
    ds = LabelSet(LABELS)

    def predict(x):
        y = x[:, 0].long().clone()
        y[0, :, 3] = torch.where(y[0, :, 3] == 1, 3, y[0, :, 3])  # 2 pixels of class 1 -> cluster 3
        return y

    out = evaluate_labelled(predict, ds, num_classes=3, num_clusters=4, batch_size=2)  # y[0] = image 0
    assert out["mapping"].tolist() == [0, 1, 2, -1]
    # 14 of 16 pixels right; class 1 has 6 true pixels, 4 predicted: IoU 4/6
    assert out["scores"]["pixel_accuracy"] == pytest.approx(14 / 16)
    np.testing.assert_allclose(out["scores"]["iou"], [1.0, 4 / 6, 1.0])
    assert out["matched_cm"][:, 3].tolist() == [0, 2, 0]


def test_supervised_path_is_unmatched_and_ignores_label():
    ds = LabelSet([np.array([[0, 1, 9], [1, 1, 0]])])

    def predict(x):
        return torch.zeros_like(x[:, 0]).long()  # everything class 0

    out = evaluate_labelled(predict, ds, num_classes=2, ignore_index=9)
    assert out["mapping"] is None
    assert out["cm"].tolist() == [[2, 0], [3, 0]]  # the ignored pixel is not counted
    assert out["scores"]["pixel_accuracy"] == pytest.approx(2 / 5)


def test_wrong_prediction_shape_is_an_error():
    ds = LabelSet(LABELS)
    with pytest.raises(ValueError, match="predict_fn returned shape"):
        evaluate_labelled(lambda x: x[:, 0, :1].long(), ds, num_classes=3)


def test_tiny_comparison_writes_everything(tmp_path, capsys):
    root = write_paired(tmp_path / "data")  # train 000..005.png, val 000..002.png
    cfg = load_config(
        None,
        [
            *paired_overrides(root, tmp_path / "runs"),
            "task=compare",
            "name=cmp",
            "model.k=3",
            "ncut.radius=3",
            "train.iterations=1",
            "compare.losses=[ce, wce, dice+ce]",
            "compare.num_grid_images=2",
            "crf.kind=dense",  # adds a wnet+crf row: the same W-Net refined by the dense CRF
            "crf.workers=1",
            "data.heldout=['00[45].png']",  # training files 004 and 005: the split 'heldout'
        ],
    )
    out = compare.main(cfg)
    run = tmp_path / "runs" / "cmp"
    files = (
        "comparison.md",
        "comparison.csv",
        "per_class_iou_val.png",
        "grid_val.png",
        "per_class_iou_heldout.png",
    )
    for f in (*files, "grid_heldout.png"):
        assert (run / f).stat().st_size > 0, f
    with open(run / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    methods = ["wnet", "wnet+crf", "unet-ce", "unet-wce", "unet-dice+ce"]
    assert [(r["method"], r["split"]) for r in rows] == [(m, s) for m in methods for s in ("val", "heldout")]
    assert rows[6]["loss"] == "wce (class-weighted)" and rows[2]["loss"] == "ncut+recon, dense CRF"
    for r in rows:
        for k in ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou", "mean_dice"):
            assert 0.0 <= float(r[k]) <= 1.0
    # the ground truth's kappa depends on the split only; val has 3 images, heldout 2 (one pair)
    assert len({r["labels_kappa"] for r in rows if r["split"] == "val"}) == 1
    assert {r["labels_kappa"] for r in rows if r["split"] == "val"} != {
        r["labels_kappa"] for r in rows if r["split"] == "heldout"
    }
    assert (run / "wnet" / "last.pt").is_file()
    # no model selection in a comparison: final weights, and no best.pt chosen on the reported split
    assert (run / "dice+ce" / "last.pt").is_file() and not (run / "ce" / "best.pt").exists()
    text = (run / "comparison.md").read_text()
    assert "| wnet | ncut+recon | val |" in text and "Per-class IoU on `heldout`:" in text
    assert "`heldout` (2 images; training files matching ['00[45].png']" in text
    assert len(out["rows"]) == 10
    # the held-out files were not trained on: every method's training set has 4 images, not 6
    printed = capsys.readouterr().out
    assert printed.count("data: paired train=4 ") == 4 and "train=6" not in printed
    # grid: a header strip and 2 image rows, each with image | GT | 5 methods
    grid = cv2.imread(str(run / "grid_val.png"))
    assert grid.shape[0] == 18 + 4 + 2 * 32 + 4 and grid.shape[1] == 7 * 32 + 6 * 4
