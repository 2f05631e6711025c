import itertools
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from wnet.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    hausdorff95,
    match_clusters,
    mean_surface_distance,
    remap_labels,
    segmentation_scores,
)

# ----------------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_by_hand():
    target = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [2, 2, 0]])
    # pairs (true, pred): (0,0) (0,1) (1,1) (1,2) (2,2) (2,0)
    expected = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]])
    cm = confusion_matrix(pred, target, 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matrix_ignore_and_rectangular():
    target = np.array([0, 0, 1, 255, 255])
    pred = np.array([3, 0, 3, 9, 1])  # the 9 sits on an ignored pixel, so it is not checked
    cm = confusion_matrix(pred, target, num_classes=2, ignore_index=255, num_pred_classes=4)
    np.testing.assert_array_equal(cm, [[1, 0, 0, 1], [0, 0, 0, 1]])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_confusion_matrix_torch_matches_numpy(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA")
    rng = np.random.default_rng(0)
    target, pred = rng.integers(0, 5, (2, 7, 9)), rng.integers(0, 5, (2, 7, 9))
    target[0, 0, 0] = 255
    ref = confusion_matrix(pred, target, 5, ignore_index=255)
    got = confusion_matrix(torch.from_numpy(pred).to(device), torch.from_numpy(target).to(device), 5, 255)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int64 and got.device.type == device
    np.testing.assert_array_equal(got.cpu().numpy(), ref)
    assert ref.sum() == 2 * 7 * 9 - 1


@pytest.mark.parametrize(
    "pred, target, message",
    [
        (np.array([0, 1]), np.array([0, 7]), "target contains label 7"),
        (np.array([0, -1]), np.array([0, 1]), "pred contains label -1"),
        (np.array([0, 3]), np.array([0, 1]), "pred contains label 3"),
        (np.array([0, 1]), np.array([0, 1, 1]), "shape"),
        (np.array([0.0, 1.0]), np.array([0, 1]), "integer labels"),
    ],
)
def test_confusion_matrix_errors(pred, target, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(pred, target, 3)
    if pred.shape == target.shape:  # the torch path raises the same errors
        with pytest.raises(ValueError, match=message):
            confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), 3)


def test_accumulator_equals_one_big_matrix():
    rng = np.random.default_rng(1)
    batches = [(rng.integers(0, 4, (3, 5)), rng.integers(0, 4, (3, 5))) for _ in range(4)]
    acc = ConfusionMatrix(4)
    np.testing.assert_array_equal(acc.cm, np.zeros((4, 4)))
    for p, t in batches:
        acc.update(torch.from_numpy(p), torch.from_numpy(t))
    whole = confusion_matrix(np.stack([p for p, _ in batches]), np.stack([t for _, t in batches]), 4)
    assert isinstance(acc.cm, np.ndarray)
    np.testing.assert_array_equal(acc.cm, whole)
    acc.reset()
    assert acc.cm.sum() == 0


# ----------------------------------------------------------------------------- scores


def test_scores_by_hand():
    # rows true, columns predicted; class 2 is never true but predicted once, class 3 is absent
    cm = np.array([[5, 1, 0, 0], [2, 3, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    s = segmentation_scores(cm)
    # TP = (5, 3, 0, 0), T = (6, 6, 0, 0), P = (7, 4, 1, 0), N = 12
    assert s["pixel_accuracy"] == pytest.approx(8 / 12)
    np.testing.assert_allclose(s["recall"], [5 / 6, 3 / 6, np.nan, np.nan])
    np.testing.assert_allclose(s["precision"], [5 / 7, 3 / 4, 0.0, np.nan])
    assert s["mean_pixel_accuracy"] == pytest.approx((5 / 6 + 1 / 2) / 2)
    assert s["mean_class_precision"] == pytest.approx((5 / 7 + 3 / 4 + 0) / 3)
    # IoU = TP / (T + P - TP): 5/8, 3/7, 0/1, undefined
    np.testing.assert_allclose(s["iou"], [5 / 8, 3 / 7, 0.0, np.nan])
    assert s["miou"] == pytest.approx((5 / 8 + 3 / 7 + 0) / 3)
    assert s["fwiou"] == pytest.approx((6 * 5 / 8 + 6 * 3 / 7) / 12)
    np.testing.assert_allclose(s["dice"], [10 / 13, 6 / 10, 0.0, np.nan])
    assert s["mean_dice"] == pytest.approx((10 / 13 + 6 / 10 + 0) / 3)
    np.testing.assert_array_equal(s["support"], [6, 6, 0, 0])


def test_scores_empty_matrix_is_nan_without_warnings():
    with np.errstate(all="raise"):
        s = segmentation_scores(np.zeros((2, 2), np.int64))
    assert all(math.isnan(s[k]) for k in ("pixel_accuracy", "miou", "fwiou", "mean_dice"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_agree_with_per_class_masks(seed):
    rng = np.random.default_rng(seed)
    C = 5
    target, pred = rng.integers(0, C, (20, 30)), rng.integers(0, C - 1, (20, 30))  # class 4 never predicted
    target[rng.random(target.shape) < 0.1] = 255
    s = segmentation_scores(confusion_matrix(pred, target, C, ignore_index=255))
    valid = target != 255
    for c in range(C):
        t, p = (target == c) & valid, (pred == c) & valid
        inter, union = (t & p).sum(), (t | p).sum()
        assert s["iou"][c] == pytest.approx(inter / union)
        assert s["dice"][c] == pytest.approx(2 * inter / (t.sum() + p.sum()))
        assert s["recall"][c] == pytest.approx(inter / t.sum())
        if p.sum():
            assert s["precision"][c] == pytest.approx(inter / p.sum())
        else:
            assert math.isnan(s["precision"][c])
    assert s["pixel_accuracy"] == pytest.approx((pred == target)[valid].mean())


# ----------------------------------------------------------------------------- cluster matching


def _best_agreement(cm: np.ndarray) -> int:
    """Brute force: the largest number of agreeing pixels over one-to-one cluster -> class maps."""
    C, K = cm.shape
    if K >= C:
        return max(sum(cm[c, k] for c, k in enumerate(ks)) for ks in itertools.permutations(range(K), C))
    return max(sum(cm[c, k] for k, c in enumerate(cs)) for cs in itertools.permutations(range(C), K))


@pytest.mark.parametrize("C, K", [(3, 3), (3, 5), (4, 2), (2, 4)])
@pytest.mark.parametrize("seed", [0, 1])
def test_hungarian_matches_brute_force(C, K, seed):
    rng = np.random.default_rng(seed)
    target, clusters = rng.integers(0, C, (12, 12)), rng.integers(0, K, (12, 12))
    cm = confusion_matrix(clusters, target, num_classes=C, num_pred_classes=K)
    mapping, remapped = match_clusters(cm)
    assert remapped.shape == (C, C + 1)
    assert np.trace(remapped[:, :C]) == _best_agreement(cm)
    assert remapped.sum() == cm.sum() == 144  # unassigned clusters' pixels do not vanish
    assert (mapping >= 0).sum() == min(C, K)
    assigned = mapping[mapping >= 0]
    assert len(set(assigned)) == len(assigned)  # one-to-one
    # the same matrix comes from relabelling the pixels
    relabelled = remap_labels(clusters, mapping, unassigned=C)
    np.testing.assert_array_equal(confusion_matrix(relabelled, target, C, num_pred_classes=C + 1), remapped)


def test_unassigned_clusters_count_as_errors():
    # 2 classes, 3 clusters: cluster 2 (4 pixels of class 0) is left over by Hungarian
    cm = np.array([[10, 0, 4], [1, 9, 0]])
    mapping, remapped = match_clusters(cm, "hungarian")
    np.testing.assert_array_equal(mapping, [0, 1, -1])
    np.testing.assert_array_equal(remapped, [[10, 0, 4], [1, 9, 0]])
    s = segmentation_scores(remapped)
    assert s["pixel_accuracy"] == pytest.approx(19 / 24)
    assert s["recall"][0] == pytest.approx(10 / 14)
    assert s["precision"][0] == pytest.approx(10 / 11)  # the 4 pixels are no false positive of a class
    assert s["iou"][0] == pytest.approx(10 / (14 + 11 - 10))
    # majority maps cluster 2 to class 0 as well (many-to-one)
    mapping, remapped = match_clusters(cm, "majority")
    np.testing.assert_array_equal(mapping, [0, 1, 0])
    np.testing.assert_array_equal(remapped, [[14, 0, 0], [1, 9, 0]])


def test_majority_leaves_empty_clusters_unassigned_and_bad_mode_raises():
    mapping, _ = match_clusters(np.array([[3, 0, 1], [2, 0, 5]]), "majority")
    np.testing.assert_array_equal(mapping, [0, -1, 1])
    with pytest.raises(ValueError, match="mode"):
        match_clusters(np.eye(2), "greedy")


def test_remap_labels_torch_and_range():
    pred = torch.tensor([[0, 1], [2, 2]])
    out = remap_labels(pred, np.array([2, -1, 0]), unassigned=7)
    assert isinstance(out, torch.Tensor)
    assert out.tolist() == [[2, 7], [0, 0]]
    with pytest.raises(ValueError, match="label 3"):
        remap_labels(np.array([3]), np.array([0, 1]))


# ----------------------------------------------------------------------------- surface distances


def _square(shape, y, x, side=10):
    m = np.zeros(shape, bool)
    m[y : y + side, x : x + side] = True
    return m


def _brute_surface(a: np.ndarray, b: np.ndarray):
    """Boundary pixels by a 4-neighbour test with an explicit loop, distances with cdist."""

    def boundary(m):
        pts = []
        for y, x in zip(*np.nonzero(m), strict=True):
            nb = [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)]
            if any(not (0 <= v < m.shape[0] and 0 <= u < m.shape[1]) or not m[v, u] for v, u in nb):
                pts.append((y, x))
        return np.array(pts)

    d = cdist(boundary(a), boundary(b))
    return d.min(axis=1), d.min(axis=0)


def test_hausdorff_two_squares_offset_by_three():
    a, b = _square((20, 30), 5, 5), _square((20, 30), 5, 8)
    assert hausdorff95(a, b) == pytest.approx(3.0)
    assert hausdorff95(b, a) == pytest.approx(3.0)  # symmetric
    assert hausdorff95(a, a) == 0.0
    d_ab, d_ba = _brute_surface(a, b)
    assert mean_surface_distance(a, b) == pytest.approx(np.concatenate([d_ab, d_ba]).mean())
    assert hausdorff95(a, b, spacing=(1.0, 0.5)) == pytest.approx(1.5)  # 3 columns of 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surface_distances_agree_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels_a, labels_b = rng.integers(0, 3, (2, 16, 16))
    d_ab, d_ba = _brute_surface(labels_a == 1, labels_b == 1)
    expected = max(np.percentile(d_ab, 95), np.percentile(d_ba, 95))
    assert hausdorff95(labels_a, labels_b, cls=1) == pytest.approx(expected)
    assert mean_surface_distance(labels_a, labels_b, cls=1) == pytest.approx(
        np.concatenate([d_ab, d_ba]).mean()
    )


def test_surface_distance_single_pixels_and_empty_masks():
    a, b, empty = np.zeros((9, 9), bool), np.zeros((9, 9), bool), np.zeros((9, 9), bool)
    a[4, 1], b[4, 5] = True, True
    assert hausdorff95(a, b) == pytest.approx(4.0)
    assert mean_surface_distance(a, b) == pytest.approx(4.0)
    assert hausdorff95(a, empty) == math.inf and mean_surface_distance(empty, b) == math.inf
    assert math.isnan(hausdorff95(empty, empty)) and math.isnan(mean_surface_distance(empty, empty))
    with pytest.raises(ValueError, match="shape"):
        hausdorff95(a, np.zeros((9, 8), bool))
