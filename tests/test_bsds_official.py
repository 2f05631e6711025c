"""The port against the official BSDS500 benchmark's own demo outputs (tests/fixtures/bsds_bench)."""

from pathlib import Path

import numpy as np
import pytest

from wnet.bsds import evaluate, evaluate_image, evaluate_predictions, load_ground_truth, load_prediction

FIX = Path(__file__).resolve().parent / "fixtures" / "bsds_bench"
REGION_FILES = (
    "eval_cover.txt",
    "eval_cover_img.txt",
    "eval_cover_th.txt",
    "eval_RI_VOI.txt",
    "eval_RI_VOI_thr.txt",
)
BDRY_FILES = ("eval_bdry.txt", "eval_bdry_img.txt", "eval_bdry_thr.txt")
REGION_TOL, BDRY_TOL = 1e-3, 5e-3  # the official matcher is randomised; region numbers are exact


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three runs that cover test_1..test_5 (test_3 and test_5 are halves of test_4)."""
    out = {}
    for name, inputs, bench, png in (
        ("ucm2_all", "ucm2", "all", "labels"),
        ("png_bdry", "png", "boundary", "boundary"),
        ("segs_all", "segs", "all", "labels"),
    ):
        d = tmp_path_factory.mktemp(name)
        summary = evaluate(
            FIX / inputs, FIX / "groundTruth", d, nthresh=5, workers=2, bench=bench, png_kind=png
        )
        out[name] = (d, summary)
    return out


@pytest.mark.parametrize(
    "run, official, files, tol",
    [
        ("ucm2_all", "test_1", REGION_FILES, REGION_TOL),
        ("ucm2_all", "test_1", BDRY_FILES, BDRY_TOL),
        ("png_bdry", "test_2", BDRY_FILES, BDRY_TOL),
        ("segs_all", "test_3", BDRY_FILES, BDRY_TOL),
        ("segs_all", "test_4", REGION_FILES, REGION_TOL),
        ("segs_all", "test_4", BDRY_FILES, BDRY_TOL),
        ("segs_all", "test_5", REGION_FILES, REGION_TOL),
    ],
)
def test_reproduces_official_outputs(runs, run, official, files, tol):
    out_dir, _ = runs[run]
    for f in files:
        want = np.loadtxt(FIX / official / f, ndmin=2)
        got = np.loadtxt(out_dir / f, ndmin=2)
        assert got.shape == want.shape, f
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{official}/{f}")


def test_region_files_match_every_printed_digit(runs):
    # the %10g round trip of the official per-image files is reproduced, so the text is identical
    out_dir, _ = runs["ucm2_all"]
    for f in REGION_FILES:
        assert (out_dir / f).read_text() == (FIX / "test_1" / f).read_text(), f


def test_summary_and_plot(runs):
    out_dir, summary = runs["ucm2_all"]
    assert summary["sc_ods"] == pytest.approx(0.654023, abs=1e-6)
    assert summary["sc_ois"] == pytest.approx(0.725074, abs=1e-6)
    assert summary["sc_best"] == pytest.approx(0.749811, abs=1e-6)
    assert summary["pri_ods"] == pytest.approx(0.826926, abs=1e-6)
    assert summary["vi_ods"] == pytest.approx(1.36877, abs=1e-5)
    assert summary["bdry_ods_f"] == pytest.approx(0.704632, abs=BDRY_TOL)
    assert summary["bdry_ap"] == pytest.approx(0.307593, abs=BDRY_TOL)
    assert summary["n_images"] == 5 and summary["images"] == ["2018", "3063", "5096", "6046", "8068"]
    assert (out_dir / "summary.json").stat().st_size > 0
    assert (out_dir / "pr_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_in_memory_equals_files():
    """evaluate_predictions on arrays (what training code calls) == evaluate on the .mat files."""
    preds = {k: load_prediction(FIX / "ucm2" / f"{k}.mat").data for k in ("2018", "6046")}
    mem = evaluate_predictions(preds, FIX / "groundTruth", nthresh=5, workers=1, bench="region")
    sub = {k: load_prediction(FIX / "segs" / f"{k}.mat").data for k in preds}  # the same levels as segs
    segs = evaluate_predictions(sub, FIX / "groundTruth", nthresh=5, workers=1, bench="region")
    for key in ("sc_ods", "sc_ois", "sc_best", "pri_ods", "pri_ois", "vi_ods", "vi_ois"):
        assert mem[key] == pytest.approx(segs[key], abs=1e-12), key


@pytest.mark.parametrize("image", ["3063", "8068"])
def test_fast_paths_equal_literal_loops(image):
    gts = load_ground_truth(FIX / "groundTruth" / f"{image}.mat")
    ucm2 = load_prediction(FIX / "ucm2" / f"{image}.mat")
    fast = evaluate_image(ucm2, gts, nthresh=12, bench="all")
    slow = evaluate_image(ucm2, gts, nthresh=12, bench="all", fast=False)
    for k, v in vars(fast.boundary).items():  # integer counts: identical
        np.testing.assert_array_equal(v, getattr(slow.boundary, k), err_msg=k)
    for k, v in vars(fast.region).items():  # float sums in another order: equal to rounding
        if isinstance(v, np.ndarray):
            np.testing.assert_allclose(v, getattr(slow.region, k), rtol=1e-12, atol=0, err_msg=k)
    assert fast.region.cntR_best == pytest.approx(slow.region.cntR_best, rel=1e-12)
