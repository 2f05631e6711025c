"""Segmentation metrics over an accumulated confusion matrix, cluster matching, surface distances.

Conventions (everywhere in this module): a confusion matrix ``cm`` has ROWS = TRUE classes and
COLUMNS = PREDICTED labels, ``cm[c, k]`` = number of pixels of true class c predicted as k.
Scores are pure functions of ``cm``, so a dataset is scored by summing per-image matrices
(``ConfusionMatrix.update`` does that) and scoring once: never average per-image scores.

Types: ``confusion_matrix`` returns what it is given, a NumPy int64 array for NumPy inputs and
a torch int64 tensor on the inputs' device when either input is a tensor (counted with
``torch.bincount``, no host copy). Everything else returns NumPy / Python floats.

References:
    Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation",
    CVPR 2015, sec. 5 (pixel accuracy, mean accuracy, mean IU, frequency-weighted IU).
    Cho et al., "PiCIE", CVPR 2021, and Hamilton et al., "STEGO", ICLR 2022 (Hungarian matching
    of clusters to classes for unsupervised segmentation).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

Array = np.ndarray | torch.Tensor


def _check_labels(name: str, x: Array, n: int) -> None:
    """Raise ValueError naming the first label of ``x`` outside ``[0, n)``."""
    if math.prod(x.shape) == 0:
        return
    lo, hi = map(int, torch.aminmax(x) if isinstance(x, torch.Tensor) else (x.min(), x.max()))
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name} contains label {bad}, outside the valid range [0, {n - 1}]")


def _confusion_torch(pred, target, C: int, K: int, ignore_index: int | None) -> torch.Tensor:
    """:func:`confusion_matrix` on the tensors' device, without boolean indexing (a host sync and a copy)."""
    device = pred.device if isinstance(pred, torch.Tensor) else target.device
    p, t = (torch.as_tensor(a, device=device) for a in (pred, target))
    for name, a in (("pred", p), ("target", t)):
        if a.is_floating_point() or a.is_complex():
            raise ValueError(f"{name} must hold integer labels, got dtype {a.dtype}")
    p, t = p.reshape(-1).long(), t.reshape(-1).long()
    ignored = t == ignore_index if ignore_index is not None else None  # -> an extra bin C * K
    if ignored is not None:
        t, p = t.masked_fill(ignored, 0), p.masked_fill(ignored, 0)
    _check_labels("target", t, C)
    _check_labels("pred", p, K)
    flat = torch.add(p, t, alpha=K)  # (N,) index into the row-major (C, K) matrix
    if ignored is not None:
        flat.masked_fill_(ignored, C * K)
    return torch.bincount(flat, minlength=C * K + 1)[: C * K].reshape(C, K)


def confusion_matrix(
    pred: Array,
    target: Array,
    num_classes: int,
    ignore_index: int | None = None,
    num_pred_classes: int | None = None,
) -> Array:
    """Count (true, predicted) label pairs with one bincount.

    Args:
        pred: predicted labels in ``[0, K)``, integer or bool, any shape.
        target: true labels in ``[0, C)`` or ``ignore_index``, same shape as ``pred``.
        num_classes: C, the number of true classes (rows).
        ignore_index: target label whose pixels are left out (their predictions are not checked).
        num_pred_classes: K, the number of predicted labels (columns); defaults to C. Use K != C
            for clusters vs classes (see ``match_clusters``).

    Returns:
        ``cm``, int64, shape (C, K); NumPy for NumPy inputs, torch (on the inputs' device) when
        either input is a tensor.

    Raises:
        ValueError: shapes differ, non-integer labels, or a label out of range (named).
    """
    C = int(num_classes)
    K = C if num_pred_classes is None else int(num_pred_classes)
    if C < 1 or K < 1:
        raise ValueError(f"num_classes and num_pred_classes must be >= 1, got {C} and {K}")
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if isinstance(pred, torch.Tensor) or isinstance(target, torch.Tensor):
        return _confusion_torch(pred, target, C, K, ignore_index)
    p, t = np.asarray(pred), np.asarray(target)
    for name, a in (("pred", p), ("target", t)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise ValueError(f"{name} must hold integer labels, got dtype {a.dtype}")
    p, t = p.reshape(-1).astype(np.int64), t.reshape(-1).astype(np.int64)
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    _check_labels("target", t, C)
    _check_labels("pred", p, K)
    flat = t * K + p  # (N,)
    return np.bincount(flat, minlength=C * K).reshape(C, K).astype(np.int64)


class ConfusionMatrix:
    """Streaming sum of per-batch confusion matrices; ``cm`` is the NumPy total.

    Torch batches are counted and summed on their own device; only reading ``cm`` copies to host.

    Example:
        acc = ConfusionMatrix(11, ignore_index=11)
        for pred, mask in batches:
            acc.update(pred, mask)
        scores = segmentation_scores(acc.cm)
    """

    def __init__(
        self, num_classes: int, ignore_index: int | None = None, num_pred_classes: int | None = None
    ):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.num_pred_classes = num_classes if num_pred_classes is None else num_pred_classes
        self._total: Array | None = None

    def update(self, pred: Array, target: Array) -> None:
        cm = confusion_matrix(pred, target, self.num_classes, self.ignore_index, self.num_pred_classes)
        if self._total is None:
            self._total = cm
        elif isinstance(self._total, torch.Tensor) != isinstance(cm, torch.Tensor):
            self._total = _to_numpy(self._total) + _to_numpy(cm)  # mixed inputs: fall back to host
        else:
            self._total = self._total + cm

    def reset(self) -> None:
        self._total = None

    @property
    def cm(self) -> np.ndarray:
        """(C, K) int64 NumPy array; zeros before any update."""
        if self._total is None:
            return np.zeros((self.num_classes, self.num_pred_classes), dtype=np.int64)
        return _to_numpy(self._total).astype(np.int64)


def _to_numpy(a: Array) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, nan where den == 0 (the quantity is undefined there)."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean(x: np.ndarray) -> float:
    """Mean over the defined entries; nan when none is (no RuntimeWarning)."""
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def segmentation_scores(cm: Array) -> dict[str, float | np.ndarray]:
    """All the usual scores of a (C, C) confusion matrix (rows true, columns predicted).

    With TP_c = cm[c, c], T_c = sum_k cm[c, k] (true pixels of c), P_c = sum_r cm[r, c]
    (pixels predicted c) and N = sum cm:

    - ``pixel_accuracy`` = sum_c TP_c / N
    - ``recall[c]`` = TP_c / T_c;  ``precision[c]`` = TP_c / P_c
    - ``mean_pixel_accuracy`` = mean_c recall[c]: the "mean accuracy" of Long et al. 2015 (FCN).
      The other convention in use, the mean of per-class PRECISION (sometimes called class
      pixel accuracy, CPA, with its mean MPA), is ``mean_class_precision`` = mean_c precision[c].
    - ``iou[c]`` = TP_c / (T_c + P_c - TP_c);  ``miou`` = mean_c iou[c]
    - ``fwiou`` = sum_c T_c * iou[c] / sum_c T_c (frequency-weighted IoU, FCN)
    - ``dice[c]`` = 2 TP_c / (T_c + P_c);  ``mean_dice`` = mean_c dice[c]

    A per-class value is nan where its denominator is 0 (recall: class absent from the target;
    precision: class never predicted; iou/dice: class absent from both), and every mean skips
    nan entries, so a class absent from both prediction and target does not count in ``miou``.

    A (C, C + E) matrix is also accepted: the E extra columns are predictions that are no class
    (e.g. the unassigned clusters of ``match_clusters``). They count as errors of their true
    class (in T_c and N) but as a false positive of no class.

    Args:
        cm: confusion matrix, NumPy or torch, shape (C, C + E) with E >= 0.

    Returns:
        dict of floats (``pixel_accuracy``, ``mean_pixel_accuracy``, ``mean_class_precision``,
        ``miou``, ``fwiou``, ``mean_dice``) and (C,) float64 arrays (``precision``, ``recall``,
        ``iou``, ``dice``, plus ``support`` = T_c as int64).
    """
    cm = _to_numpy(cm)
    if cm.ndim != 2 or cm.shape[1] < cm.shape[0]:
        raise ValueError(f"expected a (C, C) or (C, C + E) confusion matrix, got shape {cm.shape}")
    C = cm.shape[0]
    cm = cm.astype(np.float64)
    tp = np.diag(cm[:, :C])  # (C,)
    t = cm.sum(axis=1)  # (C,) true pixels, including those predicted as no class
    p = cm[:, :C].sum(axis=0)  # (C,) pixels predicted as each class
    n = cm.sum()
    recall, precision = _ratio(tp, t), _ratio(tp, p)
    iou, dice = _ratio(tp, t + p - tp), _ratio(2 * tp, t + p)
    present = t > 0
    fwiou = float(np.sum(t[present] * iou[present]) / t.sum()) if t.sum() > 0 else float("nan")
    return {
        "pixel_accuracy": float(tp.sum() / n) if n > 0 else float("nan"),
        "mean_pixel_accuracy": _nanmean(recall),
        "mean_class_precision": _nanmean(precision),
        "miou": _nanmean(iou),
        "fwiou": fwiou,
        "mean_dice": _nanmean(dice),
        "precision": precision,
        "recall": recall,
        "iou": iou,
        "dice": dice,
        "support": t.astype(np.int64),
    }


def match_clusters(
    cm: Array, mode: Literal["hungarian", "majority"] = "hungarian"
) -> tuple[np.ndarray, np.ndarray]:
    """Map K unsupervised clusters to C classes and re-express ``cm`` in class terms.

    Args:
        cm: (C, K) confusion matrix, ROWS = true classes, COLUMNS = clusters, i.e.
            ``confusion_matrix(clusters, target, num_classes=C, num_pred_classes=K)``.
        mode: ``'hungarian'``: one-to-one assignment maximising the number of agreeing pixels
            (``linear_sum_assignment(cm, maximize=True)``), as in PiCIE and STEGO (which use
            K == C). With K > C, K - C clusters stay unassigned (-1); with K < C, C - K classes
            get no cluster. ``'majority'``: many-to-one, each cluster goes to the class holding
            most of its pixels (clusters with no pixels get -1); for over-clustering (K > C).

    Returns:
        ``mapping``: (K,) int64, cluster -> class, -1 for an unassigned cluster.
        ``remapped``: (C, C + 1) int64 confusion matrix in class terms. Column j < C sums the
        clusters mapped to class j; the last column holds the pixels of unassigned clusters,
        which therefore still count as errors (in pixel accuracy, recall, IoU of their true
        class) instead of vanishing from the totals; it is all zeros when every cluster is
        assigned. ``segmentation_scores`` reads this shape directly; ``remapped[:, :C]`` is the
        square part. The same matrix comes from ``confusion_matrix(remap_labels(clusters,
        mapping, unassigned=C), target, C, num_pred_classes=C + 1)``.
    """
    cm = _to_numpy(cm).astype(np.int64)
    if cm.ndim != 2:
        raise ValueError(f"expected a (C, K) confusion matrix, got shape {cm.shape}")
    C, K = cm.shape
    mapping = np.full(K, -1, dtype=np.int64)
    if mode == "hungarian":
        classes, clusters = linear_sum_assignment(cm, maximize=True)
        mapping[clusters] = classes
    elif mode == "majority":
        has_pixels = cm.sum(axis=0) > 0
        mapping[has_pixels] = cm.argmax(axis=0)[has_pixels]
    else:
        raise ValueError(f"mode must be 'hungarian' or 'majority', got {mode!r}")
    remapped = np.zeros((C, C + 1), dtype=np.int64)
    cols = np.where(mapping >= 0, mapping, C)  # (K,) column of each cluster
    np.add.at(remapped.T, cols, cm.T)  # remapped[:, cols[k]] += cm[:, k]
    return mapping, remapped


def remap_labels(pred: Array, mapping: Array, unassigned: int = -1) -> Array:
    """Apply a cluster -> class ``mapping`` (from ``match_clusters``) to a label map.

    Args:
        pred: cluster ids in ``[0, K)``, any shape, NumPy or torch.
        mapping: (K,) cluster -> class, -1 for unassigned clusters.
        unassigned: the value given to pixels of unassigned clusters.

    Returns:
        class ids, same type, shape and device as ``pred``.
    """
    m = _to_numpy(mapping).astype(np.int64)
    m = np.where(m >= 0, m, unassigned)
    idx = pred.long() if isinstance(pred, torch.Tensor) else np.asarray(pred).astype(np.int64)
    _check_labels("pred", idx, len(m))
    if isinstance(pred, torch.Tensor):
        return torch.as_tensor(m, device=pred.device)[idx]
    return m[idx]


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image edge counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask)


def _surface_distances(pred: Array, target: Array, cls: int | None, spacing) -> tuple[np.ndarray, ...]:
    """Distances from each boundary pixel of one mask to the other mask's boundary, both ways."""
    a, b = _to_numpy(pred), _to_numpy(target)
    if a.shape != b.shape:
        raise ValueError(f"pred shape {a.shape} != target shape {b.shape}")
    a, b = (a == cls, b == cls) if cls is not None else (a.astype(bool), b.astype(bool))
    ba, bb = _boundary(a), _boundary(b)
    if not ba.any() or not bb.any():
        return (np.empty(0), np.empty(0)) if ba.any() == bb.any() else (None, None)
    # distance_transform_edt measures distance to the nearest ZERO, so invert the boundaries
    d_ab = ndimage.distance_transform_edt(~bb, sampling=spacing)[ba]  # pred boundary -> target
    d_ba = ndimage.distance_transform_edt(~ba, sampling=spacing)[bb]  # target boundary -> pred
    return d_ab, d_ba


def hausdorff95(pred: Array, target: Array, cls: int | None = None, spacing=None) -> float:
    """Symmetric 95th-percentile Hausdorff distance between two masks' boundaries.

    HD95 = max(P95_{a in dA} d(a, dB), P95_{b in dB} d(b, dA)), with dA, dB the boundary
    pixels (4-connected inner boundary) and d the Euclidean distance (scaled by ``spacing``).

    Args:
        pred, target: binary masks, or label maps together with ``cls``; same shape (any ndim).
        cls: class id selecting ``label == cls``; None treats nonzero as foreground.
        spacing: pixel size per axis (``distance_transform_edt``'s ``sampling``); default 1.

    Returns:
        distance in pixels (or ``spacing`` units); nan when both masks are empty, inf when
        exactly one is.
    """
    d_ab, d_ba = _surface_distances(pred, target, cls, spacing)
    if d_ab is None:
        return float("inf")
    if d_ab.size == 0:
        return float("nan")
    return float(max(np.percentile(d_ab, 95), np.percentile(d_ba, 95)))


def mean_surface_distance(pred: Array, target: Array, cls: int | None = None, spacing=None) -> float:
    """Average symmetric surface distance (ASSD) between two masks' boundaries.

    ASSD = (sum_{a in dA} d(a, dB) + sum_{b in dB} d(b, dA)) / (|dA| + |dB|)
    (Heimann et al., IEEE TMI 2009). Arguments and empty-mask behaviour as in ``hausdorff95``.
    """
    d_ab, d_ba = _surface_distances(pred, target, cls, spacing)
    if d_ab is None:
        return float("inf")
    if d_ab.size == 0:
        return float("nan")
    return float(np.concatenate([d_ab, d_ba]).mean())
