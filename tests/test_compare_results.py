"""The comparison's results over seeds with a split column: collected per split, rendered with the positional
kappas, the tiling flag and the claims on both splits, checked per (method, seed, split)."""

import csv
import json

import pytest

from wnet.tasks import compare_tables
from wnet.tasks import results as rt

META = {"date": "2026-12-02", "commit": "abc1234", "wall_s": 60.0, "seeds": [0, 1, 2], "machine": "test box"}
COLUMNS = compare_tables.COLUMNS
# (method, split) -> per seed (mIoU, positional kappa); the labels' kappa: val 0.60, heldout 0.40
FIGURES = {
    ("wnet", "val"): [(0.20, 0.30), (0.22, 0.30), (0.24, 0.30)],  # spread 0.22 ± 2 x 0.02 = [0.18, 0.26]
    ("wnet", "heldout"): [(0.19, 0.70), (0.21, 0.30), (0.25, 0.30)],  # inside; seed 0 tiled (0.70 > 0.5, 0.4)
    ("unet-ce", "val"): [(0.50, 0.55), (0.52, 0.55), (0.54, 0.55)],
    ("unet-ce", "heldout"): [(0.30, 0.55), (0.31, 0.55), (0.32, 0.55)],  # outside [0.48, 0.56]; never flagged
}


def _comparison(folder, seed):
    folder.mkdir(parents=True)
    with open(folder / "comparison.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for (method, split), values in FIGURES.items():
            miou, kappa = values[seed]
            labels = 0.60 if split == "val" else 0.40
            loss = "ncut+recon" if method == "wnet" else "ce"
            w.writerow([method, loss, split, *[f"{miou:.4f}"] * 5, f"{kappa:.4f}", f"{labels:.4f}", "10.0"])


@pytest.fixture
def results(tmp_path):
    runs = tmp_path / "work" / "compare_camvid"
    for seed in range(3):
        _comparison(runs / f"compare_camvid-s{seed}", seed)
    dest = tmp_path / "results"
    dest.mkdir()
    rt.collect("compare_camvid", runs, dest, [0, 1, 2])
    (dest / "compare_camvid.meta.json").write_text(json.dumps(META))
    return dest


def test_collect_keeps_every_seed_and_split(results):
    rows = list(csv.DictReader(open(results / "compare_camvid.csv")))
    assert [(r["method"], r["seed"], r["split"]) for r in rows] == [
        (m, str(s), split) for s in range(3) for m, split in FIGURES
    ]


def test_render_has_both_splits_the_kappas_and_the_flag(results):
    text = rt.render("compare_camvid", results)
    assert "| wnet | ncut+recon | val | 0.2200 ± 0.0200 |" in text
    assert "| wnet | ncut+recon | heldout | 0.2167 ± 0.0306 |" in text
    assert "0.300 (0.600) |" in text  # W-Net on val: below the labels' kappa, no flag
    assert "0.433 ± 0.231 (0.400) ⚠ 1 of 3 seeds |" in text  # mean of .70 .30 .30; seed 0 flagged
    assert "| unet-ce | ce | heldout | 0.3100 ± 0.0100 |" in text and "0.550 (0.400) |" in text  # not W-Net
    assert compare_tables.FLAG_NOTE in text
    assert "On `val`, beyond the spread on mIoU, 1 of 1 supervised rows beat W-Net." in text
    assert (
        "`wnet` does not transfer to `heldout`: mIoU on `heldout` 0.190 / 0.210 / 0.250, inside its `val` spread "
        "[0.180, 0.260] for 3 of 3 seeds, below it for 0; positional kappa 0.70 / 0.30 / 0.30 against the labels' 0.400, "
        "flagged (⚠) for 1 of 3." in text
    )
    assert (
        "Supervised rows with no seed's `heldout` mIoU below their `val` spread (mean - 2 std): none (0 of 1)."
        in text
    )


def test_summary_says_whether_wnet_transfers(results):
    summary = rt.render("compare_camvid", results, "summary")
    assert summary.startswith(
        "On `val`, W-Net (clusters Hungarian-matched to the classes) 0.220 ± 0.020 mIoU"
    )
    assert (
        "On `heldout`, W-Net 0.217 ± 0.031 mIoU; the best supervised U-Net (ce loss) 0.310 ± 0.010" in summary
    )
    assert "W-Net does not transfer to `heldout`" in summary and summary.endswith("(Training seeds 0, 1, 2.)")


def test_check_compares_each_split_s_row(results, tmp_path):
    assert [d for d in rt.compare("compare_camvid", results, results) if d.startswith("MISMATCH")] == []
    rows = list(csv.DictReader(open(results / "compare_camvid.csv")))
    rows[3]["labels_kappa"] = "0.4001"  # unet-ce, seed 0, heldout
    (tmp_path / "fresh").mkdir()
    rt._write_rows(tmp_path / "fresh" / "compare_camvid.csv", rows)
    diffs = [d for d in rt.compare("compare_camvid", results, tmp_path / "fresh") if d.startswith("MISMATCH")]
    assert diffs == [
        "MISMATCH compare_camvid ('unet-ce', '0', 'heldout') labels_kappa: stored 0.4000, now 0.4001"
    ]


def test_figures_keep_the_eval_split_s_names():
    rows = [{"split": "val"}, {"split": "heldout"}]
    assert compare_tables.figures(rows) == {
        "per_class_iou_val.png": "per_class_iou.png",
        "grid_val.png": "grid.png",
        "per_class_iou_heldout.png": "per_class_iou_heldout.png",
        "grid_heldout.png": "grid_heldout.png",
    }
    assert compare_tables.figures([{"method": "wnet"}])["grid.png"] == "grid.png"  # before the split column


def test_one_seed_makes_no_transfer_claim(tmp_path):
    _comparison(tmp_path / "work" / "compare_camvid-s0", 0)
    rt.collect("compare_camvid", tmp_path / "work", tmp_path, [0])
    (tmp_path / "compare_camvid.meta.json").write_text(json.dumps(META | {"seeds": [0]}))
    text = rt.render("compare_camvid", tmp_path)
    assert "`wnet` on `heldout`: mIoU on `heldout` 0.190 (one seed: no `val` spread to compare with)" in text
    assert "transfer" not in text.replace("to compare with", "") and "Supervised rows whose" not in text


@pytest.mark.parametrize(
    "heldout, ok, words",
    [
        (
            [0.20, 0.22, 0.24],
            True,
            "inside its `val` spread [0.180, 0.260] for 3 of 3 seeds, below it for 0;",
        ),
        (
            [0.20, 0.22, 0.30],
            True,
            "for 2 of 3 seeds, below it for 0, above it for 1;",
        ),  # better unseen: holds
        ([0.10, 0.22, 0.24], False, "for 2 of 3 seeds, below it for 1;"),
    ],
)
def test_a_score_transfers_unless_a_seed_falls_below_the_spread(heldout, ok, words):
    stats = {
        ("wnet", "val"): {"miou": [0.20, 0.22, 0.24]},
        ("wnet", "heldout"): {"miou": heldout, "positional_kappa": [0.1] * 3, "labels_kappa": [0.4]},
    }
    rows = [{"method": "wnet", "split": "heldout", "positional_kappa": "0.1", "labels_kappa": "0.4"}] * 3
    got, text = compare_tables.transfer(rows, stats, "wnet", "val", "heldout")
    assert got is ok and words in text
