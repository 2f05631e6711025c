"""experiments/baseline_scales.py: the baselines' sweeps beside coarser ones, as a results file."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import ENV, ROOT, load_script, write_fake_bsds

from wnet.tasks import bench_tables
from wnet.tasks import results as rt

scales = load_script("baseline_scales")


def test_absorb_merges_small_regions_into_their_nearest_large_one():
    labels = np.array(
        [
            [0, 0, 0, 1, 1, 1],
            [0, 2, 0, 1, 1, 1],  # region 2: one pixel inside region 0
            [0, 0, 0, 1, 3, 3],  # region 3: two pixels inside region 1
        ]
    )
    out = scales._absorb(labels, min_area=3)
    assert np.array_equal(out, [[0, 0, 0, 1, 1, 1]] * 3)
    # the largest region stays even when it is below the area: nothing would remain otherwise
    assert np.array_equal(scales._absorb(np.zeros((2, 2), int), min_area=10), np.zeros((2, 2), int))


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("bsds")
    write_fake_bsds(root, n_train=0, n_test=2, size=40)
    out = root / "scales.json"
    res = scales.main(["--data", str(root), "--split", "test", "--sweeps", "fh,fh-area", "--json", str(out)])
    return res, json.loads(out.read_text())


def test_each_sweep_has_its_scores_regions_and_label(scored):
    res, written = scored
    assert written == res and res["split"] == "test" and res["images"] == 2
    assert list(res["sweeps"]) == ["fh", "fh-area"] and set(res["seconds"]) == {"fh", "fh-area"}
    fh, area = res["sweeps"]["fh"], res["sweeps"]["fh-area"]
    assert fh["label"] == "`fh` (in-harness: k 50..3000)"
    assert area["label"] == "FH k = 100, min_size 20..12800 px"
    for s in (fh, area):
        assert s["levels"] == 10 and s["regions_finest"] >= s["regions_coarsest"] >= 1
        assert 0 < s["sc_ods"] <= s["sc_ois"] <= 1 and 0 < s["pri_ods"] <= s["pri_ois"] <= 1
        assert 0 <= s["vi_ois"] <= s["vi_ods"]
    # a minimum area of 12800 px on a 40x40 image leaves one region: the coarsest level is whole
    assert area["regions_coarsest"] == 1


def test_the_scores_are_deterministic(scored, tmp_path):
    res, _ = scored
    root = tmp_path / "bsds"
    write_fake_bsds(root, n_train=0, n_test=2, size=40)
    again = scales.main(["--data", str(root), "--split", "test", "--sweeps", "fh-area"])
    assert again["sweeps"]["fh-area"] == res["sweeps"]["fh-area"]


def test_the_rendered_table_has_a_row_per_sweep_and_check_compares_only_the_scores(scored, tmp_path):
    res, _ = scored
    rows = bench_tables.baseline_scales(res)
    assert rows[0].startswith("Region benchmark, BSDS500 test, the first 2 images, 10 levels per sweep")
    fh = f"| `fh` (in-harness: k 50..3000) | {res['sweeps']['fh']['sc_ods']:.3f} | "
    assert len(rows) == 4 + 2 and rows[4].startswith(fh)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    slower = res | {"seconds": {k: v * 3 + 1 for k, v in res["seconds"].items()}}
    (tmp_path / "a" / "baseline_scales.json").write_text(json.dumps(res))
    (tmp_path / "b" / "baseline_scales.json").write_text(json.dumps(slower))
    assert not [d for d in rt.compare("baseline_scales", tmp_path / "a", tmp_path / "b") if "MISMATCH" in d]
    moved = json.loads(json.dumps(res))
    moved["sweeps"]["fh"]["sc_ods"] += 0.0001
    (tmp_path / "b" / "baseline_scales.json").write_text(json.dumps(moved))
    assert [d for d in rt.compare("baseline_scales", tmp_path / "a", tmp_path / "b") if "MISMATCH" in d] == [
        f"MISMATCH baseline_scales sweeps.fh.sc_ods: stored {res['sweeps']['fh']['sc_ods']}, "
        f"now {moved['sweeps']['fh']['sc_ods']}"
    ]


def test_an_unknown_sweep_is_one_line_naming_it(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "baseline_scales.py"),
            "--data",
            str(tmp_path),
            "--sweeps",
            "fh,fw",
        ],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert (
        r.returncode == 2 and "--sweeps: unknown sweep(s) ['fw']" in r.stderr and "Traceback" not in r.stderr
    )
