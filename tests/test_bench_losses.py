"""experiments/bench_losses.py: every loss timed against PyTorch's own loss, and its results table."""

import json
import math
import subprocess
import sys

import pytest
import torch.nn.functional as nnf
from helpers import ENV, ROOT, load_script

from wnet.losses import LOSSES
from wnet.tasks import bench_tables

bench = load_script("bench_losses")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    res = bench.main(["--shape", "2,3,8,8", "--repeats", "2", "--json", str(out)])
    return res, json.loads(out.read_text())


def test_every_loss_but_the_alias_is_timed_once_against_its_baseline(tiny):
    res, written = tiny
    assert written == res
    assert set(res["losses"]) == set(LOSSES) - {"jaccard"} == set(res["values"])
    assert set(res["baseline_values"]) == {"multiclass", "binary"}
    for name, r in res["losses"].items():
        assert r["mode"] == ("multiclass" if "multiclass" in LOSSES[name].modes else "binary"), name
        assert r["ms"] > 0 and r["baseline_ms"] > 0 and r["ratio"] > 0, name
        assert math.isfinite(res["values"][name]), name


def test_the_plain_losses_equal_the_baseline_they_are_timed_against(tiny):
    """ce and bce are PyTorch's losses: their values must equal the baseline's on the same draw."""
    res, _ = tiny
    assert res["values"]["ce"] == pytest.approx(res["baseline_values"]["multiclass"], abs=1e-6)
    assert res["values"]["bce"] == pytest.approx(res["baseline_values"]["binary"], abs=1e-6)
    _, x, t = bench.inputs("ce", (2, 3, 8, 8), 0)  # the draw the script used, rebuilt by hand
    assert res["baseline_values"]["multiclass"] == pytest.approx(
        float(nnf.cross_entropy(x.detach(), t)), abs=1e-6
    )


def test_the_values_are_deterministic_so_check_can_compare_them_exactly(tiny):
    res, _ = tiny
    again = bench.main(["--shape", "2,3,8,8", "--repeats", "1", "--only", "dice", "boundary"])
    assert again["values"] == {n: res["values"][n] for n in ("dice", "boundary")}


def test_the_rendered_table_has_one_row_per_loss_with_its_ratio(tiny):
    res, _ = tiny
    rows = bench_tables.losses(res)
    assert rows[2:4] == [bench_tables.HEAD, bench_tables.RULE] and len(rows) == 4 + len(res["losses"])
    assert rows[0] == f"Load average of the machine when the run started: {res['load_average']:.1f}."
    dice = next(r for r in rows if r.startswith("| `dice`"))
    assert "multiclass logits (2, 3, 8, 8)" in dice and "`F.cross_entropy`" in dice
    assert f"{res['losses']['dice']['ratio']:.1f}× the baseline" in dice
    hinge = next(r for r in rows if r.startswith("| `lovasz_hinge`"))
    assert "binary logits (2, 1, 8, 8)" in hinge and "binary_cross_entropy_with_logits" in hinge


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--shape", "4,11,128"], "--shape: expected four positive integers B,C,H,W"),
        (["--shape", "4,1,8,8"], "with C >= 2"),
        (["--only", "dise"], "--only: unknown loss(es) ['dise']"),
        (["--repeats", "0"], "--repeats: expected a positive integer"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_flag(args, expected):
    r = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "bench_losses.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
    )
    assert r.returncode == 2 and expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
