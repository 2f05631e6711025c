"""Supervised trainer on a generated paired folder: modes, class weights, a two-step run, resume."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from wnet import supervised
from wnet.config import load_config
from wnet.runtime import load_checkpoint

# class id -> BGR colour of its shapes; class 0 is the background
COLOURS = [(40, 40, 40), (30, 30, 220), (40, 200, 40), (220, 160, 30)]


def write_paired(root: Path, num_classes: int = 3, n_train: int = 6, n_val: int = 3, size: int = 32) -> Path:
    """CamVid-like folders ``{train,val}`` + ``{train,val}annot``: a rectangle and a disc of random classes.

    Every class has its own colour (plus noise), so a classifier can learn it from the pixels.
    """
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = np.zeros((size, size), np.uint8)
            c1, c2 = rng.integers(1, num_classes, 2)
            x0, y0 = rng.integers(0, size // 2, 2)
            cv2.rectangle(label, (int(x0), int(y0)), (int(x0) + size // 3, int(y0) + size // 3), int(c1), -1)
            cx, cy = rng.integers(size // 4, 3 * size // 4, 2)
            cv2.circle(label, (int(cx), int(cy)), size // 6, int(c2), -1)
            image = np.array(COLOURS[:num_classes], np.float32)[label]  # (H, W, 3) BGR
            image += rng.normal(0, 8, image.shape)
            cv2.imwrite(str(root / split / f"{i:03d}.png"), image.clip(0, 255).astype(np.uint8))
            cv2.imwrite(str(root / f"{split}annot" / f"{i:03d}.png"), label)
    return root


def paired_overrides(root: Path, out: Path, num_classes: int = 3) -> list[str]:
    return [
        "task=supervised",
        "data.name=paired",
        f"data.root={root}",
        f"data.num_classes={num_classes}",
        "data.image_size=32",
        "data.eval_size=32",
        "model.base_width=4",
        "train.batch_size=2",
        "train.log_every=1",
        "train.num_samples=2",
        "wandb.mode=disabled",
        f"out_dir={out}",
    ]


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
def test_resolve_mode(mode, loss, C, expected):
    assert supervised.resolve_mode(mode, loss, C) == expected


@pytest.mark.parametrize("mode, C", [("binary", 3), ("sometimes", 2)])
def test_resolve_mode_rejects(mode, C):
    with pytest.raises(ValueError, match="supervised.mode"):
        supervised.resolve_mode(mode, "ce", C)


def test_inverse_frequency_weights_hand_computed():
    masks = [np.array([[0, 0, 0, 1], [0, 0, 0, 1]]), np.array([[0, 9], [9, 0]])]  # 8 zeros, 2 ones
    w = supervised.inverse_frequency_weights(masks, 3, ignore=9)
    # f = (0.8, 0.2, 0) -> w = 1 / (3 f) for present classes, 0 for the absent one
    np.testing.assert_allclose(w, [1 / 2.4, 1 / 0.6, 0.0])


def test_predict_labels_binary_threshold():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            return x[:, :1] - 0.5  # logit > 0 exactly where the pixel is above 0.5

    x = torch.tensor([[[[0.2, 0.7], [0.51, 0.49]]]])  # (1, 1, 2, 2)
    labels = supervised.predict_labels(Fixed(), x, "binary", torch.device("cpu"))
    assert labels.tolist() == [[[0, 1], [1, 0]]]


def test_two_step_run_writes_checkpoints_and_scores(tmp_path):
    root = write_paired(tmp_path / "data")
    cfg = load_config(
        None,
        [*paired_overrides(root, tmp_path / "runs"), "name=sup", "train.iterations=2", "train.eval_every=1"],
    )
    out = supervised.main(cfg)
    run = Path(out["run_dir"])
    for f in ("best.pt", "last.pt", "log.jsonl", "config.yaml"):
        assert (run / f).is_file(), f
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2]
    assert [r["step"] for r in records if r["split"] == "val"] == [1, 2]  # eval_every=1
    for k in ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou", "mean_dice"):
        assert 0.0 <= out["final"][k] <= 1.0, (k, out["final"][k])
    assert out["scores"]["iou"].shape == (3,)
    assert load_checkpoint(run / "last.pt")["step"] == 2
    best = load_checkpoint(run / "best.pt")
    assert best["best_miou"] == pytest.approx(out["best_miou"])
    assert out["mode"] == "multiclass"


def test_resume_continues_from_last(tmp_path):
    root = write_paired(tmp_path / "data")
    base = [*paired_overrides(root, tmp_path / "runs"), "name=sup", "train.eval_every=2"]
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
