"""wnet.baselines: output format, determinism, and sanity on a three-colour generated image."""

import numpy as np
import pytest
from helpers import same_partition

from wnet.baselines import (
    BASELINES,
    FH_K,
    KMEANS_K,
    MEANSHIFT_SR,
    UCM2_BASELINES,
    baseline_prediction,
    components,
    run_baseline,
)
from wnet.bsds import ucm2_to_segmentations


def blocks_image(seed=0):
    """Red | green | blue blocks (green is L-shaped), with Gaussian noise of 5 grey levels."""
    rng = np.random.default_rng(seed)
    blocks = np.zeros((24, 32), np.int64)
    blocks[:, 11:22] = 1
    blocks[:, 22:] = 2
    blocks[16:, :11] = 1
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]])
    image = np.clip(colours[blocks] + rng.normal(0, 5, (24, 32, 3)), 0, 255).astype(np.uint8)
    return image, blocks


@pytest.mark.parametrize(
    "name, n_levels", [("kmeans", len(KMEANS_K)), ("meanshift", len(MEANSHIFT_SR)), ("fh", len(FH_K))]
)
def test_format_and_determinism(name, n_levels):
    image, _ = blocks_image()
    levels = run_baseline(name, image)
    assert len(levels) == n_levels >= 8
    for lab in levels:
        assert lab.shape == (24, 32) and lab.dtype == np.int32 and lab.min() >= 0
    again = run_baseline(name, image)
    assert all((a == b).all() for a, b in zip(levels, again, strict=True))
    counts = [len(np.unique(lab)) for lab in levels]
    assert counts[-1] <= counts[0]  # finest first


def test_kmeans_levels_have_k_clusters_and_find_the_blocks():
    image, blocks = blocks_image()
    levels = run_baseline("kmeans", image)
    counts = [len(np.unique(lab)) for lab in levels]
    assert counts == sorted(counts, reverse=True)
    assert all(c <= k for c, k in zip(counts, KMEANS_K, strict=True)) and counts[-1] == 2
    assert same_partition(levels[KMEANS_K.index(3)], blocks)


def test_meanshift_finest_level_is_the_blocks():
    image, blocks = blocks_image()
    levels = run_baseline("meanshift", image)
    assert same_partition(levels[0], blocks)
    assert all(len(np.unique(lab)) == 3 for lab in levels)  # colours 240 apart: never merged


def test_fh_regions_stay_inside_blocks_at_the_finest_level():
    image, blocks = blocks_image()
    fine = run_baseline("fh", image)[0]
    n = len(np.unique(fine))
    assert n >= 3 and len(np.unique(fine.astype(np.int64) * 3 + blocks)) == n


def test_components_tolerance():
    image = np.array([[[0, 0, 0], [2, 0, 0], [10, 0, 0]]], np.uint8)  # (1, 3, 3)
    assert components(image, 3.0).tolist() == [[0, 0, 1]]
    assert components(image, 9.0).tolist() == [[0, 0, 0]]  # chained through the middle pixel
    assert components(image, 1.0).tolist() == [[0, 1, 2]]


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((8, 8, 3)), "uint8"),  # float image
        (np.zeros((8, 8), np.uint8), r"\(H, W, 3\)"),  # grey
    ],
)
def test_bad_images_raise(image, match):
    with pytest.raises(ValueError, match=match):
        run_baseline("fh", image)


def test_unknown_baseline_raises():
    with pytest.raises(ValueError, match="valid: " + ", ".join(BASELINES)):
        run_baseline("watershed", blocks_image()[0])


def test_canny_owt_ucm_gives_a_ucm2_that_separates_the_blocks():
    image, blocks = blocks_image()
    u = baseline_prediction("canny-owt-ucm", image)
    assert UCM2_BASELINES == ("canny-owt-ucm", "gpb-owt-ucm") and set(UCM2_BASELINES) <= set(BASELINES)
    assert u.shape == (49, 65) and u.dtype == np.float32 and u.min() == 0 and u.max() <= 1
    assert np.array_equal(u, baseline_prediction("canny-owt-ucm", image))  # deterministic
    seg = ucm2_to_segmentations(u, [0.7])[0]  # colour steps of ~240: the three blocks stay apart
    majority = {k: np.bincount(blocks[seg == k]).argmax() for k in np.unique(seg)}
    assert len(majority) == 3 and sorted(majority.values()) == [0, 1, 2]
    assert np.mean(np.vectorize(majority.get)(seg) == blocks) >= 0.99  # smoothing may move a corner pixel
    with pytest.raises(ValueError, match="ucm2"):
        run_baseline("canny-owt-ucm", image)


@pytest.mark.parametrize("name", ["kmeans", "meanshift", "fh"])
def test_baseline_prediction_stacks_the_levels_numbered_from_1(name):
    """The benchmark's covering counts label 0 as no region (as the official regionprops does), so
    what it scores is numbered from 1: every region of every level counts."""
    image, _ = blocks_image()
    stack = baseline_prediction(name, image)
    levels = run_baseline(name, image)
    assert stack.shape == (len(levels), 24, 32) and stack.dtype == np.int32
    assert all((a == b + 1).all() for a, b in zip(stack, levels, strict=True))
    assert stack.min() == 1
