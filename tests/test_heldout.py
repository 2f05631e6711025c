"""Splits carved out of the training files (data.heldout, supervised.select_fraction), the splits' names in
logs, and the tiling flag of task=compare's tables."""

import json
import math
import re
import shutil

import cv2
import numpy as np
import pytest
from helpers import paired_overrides, write_paired

from wnet.datasets.paired import PairedFolderDataset, carve_split
from wnet.positional import looks_tiled
from wnet.tasks import supervised
from wnet.tasks.build import build_labelled
from wnet.tasks.checkpoints import load_checkpoint
from wnet.tasks.errors import ConfigError, InputError
from wnet.tasks.validate import load_config

CAMVID = [
    "0001TP_006690.jpg",
    "0001TP_006720.jpg",
    "0006R0_f00930.jpg",
    "0006R0_f00960.jpg",
    "0016E5_00390.jpg",
]
ISBI = [f"{i}.png" for i in range(24)]  # the training split of ISBI in natural order: 0..23


@pytest.mark.parametrize(
    ("names", "heldout", "fraction", "expected"),
    [
        (CAMVID, ["0006R0_*"], 0.0, {"train": [0, 1, 4], "heldout": [2, 3], "select": []}),
        (CAMVID, [], 0.4, {"train": [0, 1, 2], "heldout": [], "select": [3, 4]}),  # ceil(5 * 0.4) = 2
        (CAMVID, ["0006R0_*"], 0.3, {"train": [0, 1], "heldout": [2, 3], "select": [4]}),  # ceil(3 * 0.3) = 1
        (CAMVID, ["*_006690.jpg", "0016E5_*"], 0.0, {"train": [1, 2, 3], "heldout": [0, 4], "select": []}),
        # one character per [0-5]: 10.png .. 15.png stay in training
        (ISBI, ["[0-5].png"], 0.0, {"train": list(range(6, 24)), "heldout": list(range(6)), "select": []}),
    ],
)
def test_carve_split_parts(names, heldout, fraction, expected):
    assert carve_split(names, heldout, fraction) == expected


@pytest.mark.parametrize(
    ("heldout", "fraction", "message"),
    [(["0006r0_*"], 0.0, "match none"), (["*.jpg"], 0.0, "no training file left"), ([], 0.99, "no training")],
)
def test_carve_split_errors(heldout, fraction, message):
    with pytest.raises(ValueError, match=message):  # globs are case-sensitive: 0006r0 matches nothing
        carve_split(CAMVID, heldout, fraction)


def test_isbi_layout_keeps_its_val_slices(tmp_path):
    """Split-less layout: val is the last 20 % of all 30 slices (24..29) before anything is held out."""
    for folder in ("image", "label"):
        (tmp_path / folder).mkdir()
        for i in range(30):
            cv2.imwrite(str(tmp_path / folder / f"{i}.png"), np.zeros((4, 4), np.uint8))
    kw = dict(image_dir="image", mask_dir="label", num_classes=2, val_fraction=0.2)
    val = PairedFolderDataset(tmp_path, "val", **kw)
    part = lambda p: lambda names: carve_split(names, ["[0-5].png"])[p]  # noqa: E731
    train = PairedFolderDataset(tmp_path, "train", keep=part("train"), **kw)
    held = PairedFolderDataset(tmp_path, "train", keep=part("heldout"), **kw)
    stems = lambda ds: [int(p.stem) for p in ds.image_paths]  # noqa: E731
    assert (stems(train), stems(val), stems(held)) == (
        list(range(6, 24)),
        list(range(24, 30)),
        list(range(6)),
    )


def test_build_carves_heldout_and_selection_from_the_training_split(tmp_path):
    root = write_paired(tmp_path / "data")  # train 000..005, val 000..002
    over = [*paired_overrides(root, tmp_path / "runs"), "data.heldout=['000.png', '001.png']"]
    cfg = load_config(None, [*over, "supervised.select_fraction=0.5"])
    names = {
        s: [p.name for p in build_labelled(cfg, s, train=False).image_paths]
        for s in ("train", "heldout", "select")
    }
    assert names == {
        "train": ["002.png", "003.png"],
        "heldout": ["000.png", "001.png"],
        "select": ["004.png", "005.png"],
    }
    assert len(build_labelled(cfg, "val", train=False)) == 3  # the eval split is untouched
    cfg.task = "unsupervised"  # selection is task=supervised's: W-Net trains on everything not held out
    assert len(build_labelled(cfg, "train", train=True)) == 4
    with pytest.raises(
        InputError, match=r"data.heldout / supervised.select_fraction: heldout globs \['x\*'\]"
    ):
        build_labelled(load_config(None, [*over[:-1], "data.heldout=['x*']"]), "heldout", train=False)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        (["task=unsupervised", "data.name=procedural", "data.heldout=['a*']"], "data.heldout"),
        (["data.splits=[heldout]"], "data.splits[0]"),
        (["data.eval_split=select"], "data.eval_split"),
        (["data.eval_split=heldout"], "data.eval_split"),  # no data.heldout to make it from
        (["data.heldout=['']"], "data.heldout[0]"),
        (["supervised.select_fraction=1.0"], "supervised.select_fraction"),
        (["task=compare", "supervised.select_fraction=0.1"], "supervised.select_fraction"),
    ],
)
def test_carved_splits_are_checked_at_load(tmp_path, override, key):
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        load_config(None, [*paired_overrides(tmp_path, tmp_path / "runs"), *override])


def _records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_best_pt_is_picked_on_the_selection_split_and_the_test_split_is_named(tmp_path, capsys):
    root = write_paired(tmp_path / "data")
    shutil.copytree(root / "val", root / "test")
    shutil.copytree(root / "valannot", root / "testannot")
    over = [
        *paired_overrides(root, tmp_path / "runs"),
        "name=sup",
        "train.iterations=2",
        "train.eval_every=1",
    ]
    out = supervised.main(
        load_config(None, [*over, "data.eval_split=test", "supervised.select_fraction=0.3"])
    )
    run, log = tmp_path / "runs" / "sup", _records(tmp_path / "runs" / "sup")
    assert [r["step"] for r in log if r["split"] == "select"] == [1, 2]  # ceil(6 * 0.3) = 2 images
    assert not [r for r in log if r["split"] == "val"]
    final = [r for r in log if r["split"] == "final"][0]
    assert final["eval_split"] == "test" and final["miou"] == pytest.approx(out["final"]["miou"])
    assert load_checkpoint(run / "best.pt")["extra"]["best_miou"] == pytest.approx(out["best_miou"])
    printed = capsys.readouterr().out
    assert "train=4 test=3 select=2 (picks best.pt)" in printed and "final weights on test: mIoU=" in printed


def test_without_selection_there_is_no_best_pt(tmp_path):
    root = write_paired(tmp_path / "data")
    over = [
        *paired_overrides(root, tmp_path / "runs"),
        "name=sup",
        "train.iterations=2",
        "train.eval_every=1",
    ]
    out = supervised.main(load_config(None, over))
    log = _records(tmp_path / "runs" / "sup")
    assert [r["step"] for r in log if r["split"] == "val"] == [1, 2]  # a learning curve, named by its split
    assert not (tmp_path / "runs" / "sup" / "best.pt").exists() and "best_miou" not in out
    assert out["final"]["miou"] == pytest.approx([r for r in log if r["split"] == "val"][-1]["miou"])


@pytest.mark.parametrize(
    ("kappa", "labels", "flagged"),
    [
        (0.70, 0.407, True),
        (0.45, 0.30, False),
        (0.60, 0.64, False),
        (0.55, math.nan, True),
        (math.nan, 0.1, False),
    ],
)
def test_tiling_flag_needs_kappa_above_half_and_above_the_labels(kappa, labels, flagged):
    assert looks_tiled(kappa, labels) is flagged
