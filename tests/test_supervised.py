"""Supervised trainer on a generated paired folder: modes, class weights, a two-step run, resume."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import paired_overrides, write_paired

from wnet.inference import predict_labels
from wnet.tasks import build, supervised
from wnet.tasks.runtime import load_checkpoint
from wnet.tasks.validate import load_config


@pytest.mark.parametrize(
    "mode, loss, C, expected",
    [
        ("auto", "ce", 2, "binary"),
        ("auto", "dice+bce", 2, "binary"),
        ("auto", "ce", 11, "multiclass"),
        ("multiclass", "ce", 2, "multiclass"),
        ("binary", "lovasz_hinge", 2, "binary"),
    ],
)
def test_supervised_mode(mode, loss, C, expected):
    assert build.supervised_mode(mode, loss, C) == expected


@pytest.mark.parametrize("mode, C", [("binary", 3), ("sometimes", 2)])
def test_supervised_mode_rejects(mode, C):
    with pytest.raises(ValueError, match="supervised.mode"):
        build.supervised_mode(mode, "ce", C)


def test_inverse_frequency_weights_hand_computed():
    masks = [np.array([[0, 0, 0, 1], [0, 0, 0, 1]]), np.array([[0, 9], [9, 0]])]  # 8 zeros, 2 ones
    w = build.dataset_class_weights(masks, 3, ignore=9)
    # f = (0.8, 0.2, 0) -> w = 1 / (3 f) for present classes, 0 for the absent one
    np.testing.assert_allclose(w, [1 / 2.4, 1 / 0.6, 0.0])


def test_predict_labels_binary_threshold():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            return x[:, :1] - 0.5  # logit > 0 exactly where the pixel is above 0.5

    x = torch.tensor([[[[0.2, 0.7], [0.51, 0.49]]]])  # (1, 1, 2, 2)
    labels = predict_labels(Fixed(), x, binary=True)
    assert labels.tolist() == [[[0, 1], [1, 0]]]


def test_two_step_run_writes_checkpoints_and_scores(tmp_path):
    root = write_paired(tmp_path / "data")
    cfg = load_config(
        None,
        [
            *paired_overrides(root, tmp_path / "runs"),
            "name=sup",
            "train.iterations=2",
            "train.eval_every=1",
            "supervised.select_fraction=0.5",  # best.pt is picked on a split carved out of training
        ],
    )
    out = supervised.main(cfg)
    run = Path(out["run_dir"])
    for f in ("best.pt", "last.pt", "log.jsonl", "config.yaml"):
        assert (run / f).is_file(), f
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2]
    assert [r["step"] for r in records if r["split"] == "select"] == [1, 2]  # eval_every=1
    for k in ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou", "mean_dice"):
        assert 0.0 <= out["final"][k] <= 1.0, (k, out["final"][k])
    assert out["scores"]["iou"].shape == (3,)
    assert load_checkpoint(run / "last.pt")["step"] == 2
    best = load_checkpoint(run / "best.pt")
    assert best["extra"]["best_miou"] == pytest.approx(out["best_miou"])
    assert out["mode"] == "multiclass"


def test_resume_continues_from_last(tmp_path):
    root = write_paired(tmp_path / "data")
    base = [
        *paired_overrides(root, tmp_path / "runs"),
        "name=sup",
        "train.eval_every=2",
        "supervised.select_fraction=0.5",
    ]
    supervised.main(load_config(None, [*base, "train.iterations=2"]))
    run = tmp_path / "runs" / "sup"
    out = supervised.main(load_config(None, [*base, "train.iterations=4", f"resume={run}"]))
    assert load_checkpoint(run / "last.pt")["step"] == 4
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert max(steps) == 4 and 3 in steps  # steps 3 and 4 were trained after resuming
    assert out["best_step"] in (2, 4)


def test_weighted_binary_run(tmp_path):
    root = write_paired(tmp_path / "data", num_classes=2)
    cfg = load_config(
        None,
        [
            *paired_overrides(root, tmp_path / "runs", num_classes=2),
            "name=bin",
            "train.iterations=1",
            "supervised.loss=wce",
            "supervised.class_weights=inverse_frequency",
        ],
    )
    out = supervised.main(cfg)
    assert out["mode"] == "binary"
    with torch.no_grad():
        assert out["model"].eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 32, 32)  # one logit channel
    assert 0.0 <= out["final"]["miou"] <= 1.0
