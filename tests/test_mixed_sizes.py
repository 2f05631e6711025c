"""Labelled sets whose images differ in size: same-size batches, the positional kappas of the evaluator,
task=compare end to end on photos of 3 sizes with JPEG masks, and data errors that leave no run folder."""

import csv

import cv2
import numpy as np
import pytest
import torch
from helpers import paired_overrides, run_cli, write_paired

from wnet.evaluation import evaluate_labelled, same_size_batches
from wnet.tasks import compare
from wnet.tasks.errors import InputError
from wnet.tasks.folders import discard_unused
from wnet.tasks.validate import load_config


class LabelSet(torch.utils.data.Dataset):
    """Items whose 'image' IS the label map (as float): a predict_fn can derive any labelling from it."""

    def __init__(self, labels):
        self.labels = [torch.as_tensor(np.asarray(label)) for label in labels]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        y = self.labels[i]
        return {"image": y[None].float(), "label": y, "name": str(i)}


def test_same_size_batches_split_each_chunk_by_size():
    sizes = [(2, 3), (4, 3), (2, 3), (2, 3), (5, 5)]
    ds = LabelSet([np.full(s, i) for i, s in enumerate(sizes)])
    got = [(index, tuple(b["image"].shape)) for index, b in same_size_batches(ds, 4)]
    # chunk 1 = items 0..3 (two sizes), chunk 2 = item 4
    assert got == [([0, 2, 3], (3, 1, 2, 3)), ([1], (1, 1, 4, 3)), ([4], (1, 1, 5, 5))]
    assert [b["name"] for _, b in same_size_batches(ds, 4)][0] == ["0", "2", "3"]


def test_mixed_sizes_score_as_one_image_at_a_time():
    rng = np.random.default_rng(0)
    ds = LabelSet([rng.integers(0, 3, s) for s in [(4, 6), (6, 4), (4, 6), (5, 5), (6, 4)]])
    flip = lambda x: (2 - x[:, 0].long()) % 3  # noqa: E731 - clusters = a relabelling of the classes
    one = evaluate_labelled(flip, ds, 3, num_clusters=3, batch_size=1)
    many = evaluate_labelled(flip, ds, 3, num_clusters=3, batch_size=4)
    np.testing.assert_array_equal(one["cm"], many["cm"])
    assert many["scores"]["miou"] == pytest.approx(1.0)


def test_positional_kappas_hand_computed():
    # agreement 3/4; frequencies (1/2, 1/2) and (1/4, 3/4): chance 1/2, kappa (3/4 - 1/2) / (1/2) = 1/2
    ds = LabelSet([[[0, 0, 1, 1]], [[0, 1, 1, 1]]])
    out = evaluate_labelled(lambda x: x[:, 0].long(), ds, 2, kappa_images=16)
    assert out["positional_kappa"] == pytest.approx(0.5) and out["labels_kappa"] == pytest.approx(0.5)
    # the ignore label (9) is one more class for the labels' kappa: maps 0 0 9 9 / 0 9 9 9 give 1/2 again;
    # a constant prediction agrees everywhere by chance alone, which says nothing: nan
    ds = LabelSet([[[0, 0, 9, 9]], [[0, 9, 9, 9]]])
    out = evaluate_labelled(lambda x: torch.zeros_like(x[:, 0]).long(), ds, 2, 9, kappa_images=16)
    assert out["labels_kappa"] == pytest.approx(0.5) and np.isnan(out["positional_kappa"])


SIZES = [(32, 32), (32, 48), (40, 32)]  # (H, W)


def write_mixed(root):
    """Binary masks saved as JPEG (as the Weizmann horses ship): a bright square on a dark ground, 3 sizes."""
    rng = np.random.default_rng(1)
    for split, names in (("train", ["a", "b", "c", "d", "e", "f"]), ("val", ["g", "h", "i"])):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i, name in enumerate(names):
            h, w = SIZES[i % 3]
            mask = np.zeros((h, w), np.uint8)
            y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
            mask[y : y + h // 2, x : x + w // 2] = 255
            image = np.where(mask[..., None] > 0, 200, 40) + rng.normal(0, 8, (h, w, 3))
            cv2.imwrite(str(root / split / f"{name}.png"), image.clip(0, 255).astype(np.uint8))
            cv2.imwrite(str(root / f"{split}annot" / f"{name}.jpg"), mask, [cv2.IMWRITE_JPEG_QUALITY, 75])
    return root


@pytest.mark.slow  # a subprocess: 16 s on the busy 2-core development machine
def test_compare_on_images_of_three_sizes_with_jpeg_masks(tmp_path):
    root = write_mixed(tmp_path / "data")
    args = [
        *paired_overrides(root, tmp_path / "runs", num_classes=2)[1:],
        "task=compare",
        "name=mixed",
        "data.mask_threshold=127",
        "data.heldout=['[ab].png']",
        "model.k=2",
        "ncut.radius=3",
        "train.iterations=1",
        "compare.losses=[ce]",
        "crf.kind=none",
    ]  # the default compare.eval_batch_size (4), and W-Net's held-out scores in batches of 2
    r = run_cli(args)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    run = tmp_path / "runs" / "mixed"
    rows = list(csv.DictReader(open(run / "comparison.csv")))
    assert [(x["method"], x["split"]) for x in rows] == [
        ("wnet", "val"), ("wnet", "heldout"), ("unet-ce", "val"), ("unet-ce", "heldout")
    ]  # fmt: skip
    assert all(0.0 <= float(x["miou"]) <= 1.0 for x in rows)
    grid = cv2.imread(str(run / "grid_val.png"))  # 3 rows of the 3 sizes, tiles scaled to each row's height
    assert grid.shape[0] == 18 + sum(4 + h for h, _ in SIZES)


def test_a_mask_of_another_size_suggests_resize_to_mask_and_leaves_no_run_folder(tmp_path):
    root = write_paired(tmp_path / "data")
    cv2.imwrite(str(root / "trainannot" / "003.png"), np.zeros((16, 16), np.uint8))  # its image is 32x32
    over = [*paired_overrides(root, tmp_path / "runs"), "task=compare", "name=bad", "train.iterations=2"]
    cfg = load_config(None, [*over, "model.k=3", "ncut.radius=3", "compare.losses=[ce]"])
    with pytest.raises(InputError, match=r"003.png is 16x16 .* data.resize_to_mask=true resizes each image"):
        compare.main(cfg)
    assert not (tmp_path / "runs" / "bad").exists() and (tmp_path / "runs").is_dir()


def test_discard_unused_keeps_checkpoints_and_files_it_did_not_write(tmp_path):
    for name, extra in (("empty", None), ("ckpt", "sub/last.pt"), ("user", "notes.txt")):
        run = tmp_path / name
        (run / "sub").mkdir(parents=True)
        for f in ("config.yaml", "log.jsonl", "sub/config.yaml"):
            (run / f).write_text("x")
        if extra:
            (run / extra).write_text("x")
    assert discard_unused(tmp_path / "empty") and not (tmp_path / "empty").exists()
    assert not discard_unused(tmp_path / "ckpt") and (tmp_path / "ckpt" / "config.yaml").is_file()
    assert not discard_unused(tmp_path / "user") and sorted(
        p.name for p in (tmp_path / "user").iterdir()
    ) == ["notes.txt"]
