"""Predictions and their levels: thresholds, ucm2 -> segmentations, segmentation -> boundaries.

A prediction is one of three kinds (:class:`Prediction`):

* ``"ucm2"``: an ultrametric contour map on the doubled grid, (2h+1, 2w+1), values in [0, 1].
  Level t's segmentation is MATLAB's ``bwlabel(ucm2 <= t)`` (8-connectivity) sampled at
  ``(2:2:end, 2:2:end)``; level t's boundary map is ``ucm2(3:2:end, 3:2:end) >= t``.
* ``"segs"``: label maps, one per level (a single label map is a one-level hierarchy); the
  levels are numbered 1..n and the boundary map of a level is ``seg2bdry(seg, 'imageSize')``.
* ``"pb"``: a soft boundary map (h, w) in [0, 1] (boundary benchmark only), thresholded ``>= t``.

References: P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical
Image Segmentation", TPAMI 33(5), 2011 (the BSDS500 benchmark code ``bench/``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("ucm2", "segs", "pb")


class PredictionError(ValueError):
    """A prediction or ground-truth file that cannot be scored as it is; the message names the file."""


@dataclass
class Prediction:
    """A typed prediction. ``data`` is an array for ucm2/pb, a list of (h, w) label maps for segs."""

    kind: str
    data: np.ndarray | list[np.ndarray]
    name: str = "prediction"

    def image_shape(self) -> tuple[int, int]:
        """(h, w) of the image this prediction describes."""
        if self.kind == "ucm2":
            return ((self.data.shape[0] - 1) // 2, (self.data.shape[1] - 1) // 2)
        if self.kind == "segs":
            return tuple(self.data[0].shape)
        return tuple(self.data.shape)


def thresholds(n: int) -> np.ndarray:
    """The official thresholds ``linspace(1/(n+1), 1 - 1/(n+1), n)``.

    Shape: (n,).
    """
    if int(n) != n or n < 1:
        raise ValueError(f"nthresh must be a positive integer, got {n!r}")
    n = int(n)
    return np.linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


def _label_map(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name}: a label map must be 2-D, got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name}: label map has non-integer values")
    elif a.dtype.kind not in "iub":
        raise ValueError(f"{name}: label map has dtype {a.dtype}, expected integers")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise ValueError(f"{name}: label map has negative labels (min {a.min()}); labels must be >= 0")
    return a


def as_prediction(pred, kind: str | None = None, name: str = "prediction") -> Prediction:
    """Wrap an in-memory prediction. Without ``kind`` a list or a 3-D array is ``segs``, an
    integer (or bool) 2-D array is a single label map, and a float 2-D array is left as
    ``"auto"``: :func:`resolve` decides from the ground-truth size whether it is a ucm2
    ((2h+1, 2w+1)) or a soft boundary map ((h, w)).
    """
    if isinstance(pred, Prediction):
        return pred
    if kind is not None and kind not in KINDS:
        raise ValueError(f"{name}: kind must be one of {KINDS}, got {kind!r}")
    if isinstance(pred, (list, tuple)) or (isinstance(pred, np.ndarray) and pred.ndim == 3):
        if kind not in (None, "segs"):
            raise ValueError(f"{name}: a stack of label maps can only be kind 'segs', not {kind!r}")
        levels = [_label_map(s, f"{name} level {i + 1}") for i, s in enumerate(pred)]
        if not levels:
            raise ValueError(f"{name}: empty list of segmentations")
        if any(s.shape != levels[0].shape for s in levels):
            raise ValueError(f"{name}: segmentation levels differ in size {[s.shape for s in levels]}")
        return Prediction("segs", levels, name)
    a = np.asarray(pred)
    if a.ndim != 2:
        raise ValueError(f"{name}: prediction must be 2-D or a stack of 2-D maps, got shape {a.shape}")
    if kind == "segs" or (kind is None and a.dtype.kind in "iub"):
        return Prediction("segs", [_label_map(a, name)], name)
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)) or (a.size and (a.min() < 0 or a.max() > 1)):
        raise ValueError(
            f"{name}: contour/boundary map values must lie in [0, 1], got [{a.min()}, {a.max()}]"
        )
    return Prediction(kind or "auto", a, name)


def resolve(pred: Prediction, gt_shape: tuple[int, int]) -> Prediction:
    """Fix an ``"auto"`` kind from the ground-truth size (h, w) and check sizes.

    Raises:
        PredictionError naming the prediction when its size fits neither (h, w) nor (2h+1, 2w+1).
    """
    h, w = gt_shape
    if pred.kind == "auto":
        if pred.data.shape == (2 * h + 1, 2 * w + 1):
            pred = Prediction("ucm2", pred.data, pred.name)
        elif pred.data.shape == (h, w):
            pred = Prediction("pb", pred.data, pred.name)
        else:
            raise PredictionError(
                f"{pred.name}: float map of shape {pred.data.shape} fits neither the ground truth "
                f"({h}, {w}) nor a ucm2 ({2 * h + 1}, {2 * w + 1})"
            )
    if pred.kind == "ucm2" and pred.data.shape != (2 * h + 1, 2 * w + 1):
        raise PredictionError(
            f"{pred.name}: ucm2 of shape {pred.data.shape} is not (2h+1)x(2w+1) = "
            f"({2 * h + 1}, {2 * w + 1}) for ground truth of size ({h}, {w})"
        )
    if pred.kind != "ucm2" and pred.image_shape() != (h, w):
        raise PredictionError(
            f"{pred.name}: {pred.kind} of size {pred.image_shape()} != ground truth size ({h}, {w})"
        )
    return pred


def label8(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components with 8-connectivity (``bwlabel``'s default); 0 is background.

    Labels are 1..n in OpenCV's order (not MATLAB's column-major order; the metrics do not
    depend on the numbering). Shape: (H, W) -> (H, W) int32.
    """
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    return lab, n - 1


def ucm2_to_segmentations(ucm2: np.ndarray, thr) -> list[np.ndarray]:
    """Segmentations of a ucm2 at thresholds ``thr``, numbered as MATLAB's ``bwlabel`` numbers them.

    Args:
        ucm2: (2h+1, 2w+1) contour map on the doubled grid.
        thr: thresholds (iterable of floats).

    Returns:
        One int64 (h, w) label map per threshold: ``bwlabel(ucm2 <= t)(2:2:end, 2:2:end)``.
        Labels follow the column-major order of each component's first pixel on the doubled
        grid, as in MATLAB; 0 marks a pixel whose own ucm2 value exceeds t.
    """
    ucm2 = np.asarray(ucm2, dtype=np.float64)
    if ucm2.ndim != 2 or ucm2.shape[0] % 2 == 0 or ucm2.shape[1] % 2 == 0:
        raise ValueError(f"ucm2 must be a 2-D map of odd size (2h+1, 2w+1), got {ucm2.shape}")
    out = []
    for t in np.atleast_1d(np.asarray(thr, dtype=np.float64)):
        lab, n = label8(ucm2 <= t)
        # renumber by first occurrence in column-major order (MATLAB's bwlabel scan order)
        flat = lab.T.ravel()
        ids, first = np.unique(flat, return_index=True)
        rank = np.zeros(n + 1, dtype=np.int64)
        fg = ids > 0
        rank[ids[fg]] = np.argsort(np.argsort(first[fg])) + 1
        out.append(rank[lab[1::2, 1::2]])
    return out


def seg2bdry(seg: np.ndarray) -> np.ndarray:
    """Boundary map of a label map, as the official ``seg2bdry(seg, 'imageSize')``.

    Builds the doubled-grid edge map (edgels between differing neighbours, junctions where any of
    the four adjacent edgels is on, borders copied from their inner neighbours) and samples it at
    ``(3:2:end, 3:2:end)``. Shape: (h, w) -> (h, w) bool.
    """
    seg = np.asarray(seg)
    if seg.ndim != 2:
        raise ValueError(f"seg2bdry expects a 2-D label map, got shape {seg.shape}")
    tx, ty = seg.shape
    b = np.zeros((2 * tx + 1, 2 * ty + 1), dtype=bool)
    ev = np.zeros((tx, ty), dtype=bool)  # vertical neighbours differ: seg(i,j) ~= seg(i+1,j)
    ev[:-1, :] = seg[:-1, :] != seg[1:, :]
    eh = np.zeros((tx, ty), dtype=bool)  # horizontal neighbours differ
    eh[:, :-1] = seg[:, :-1] != seg[:, 1:]
    b[2::2, 1::2] = ev
    b[1::2, 2::2] = eh
    b[2:-1:2, 2:-1:2] = (eh[:-1, :-1] | eh[1:, :-1]) | (ev[:-1, :-1] | ev[:-1, 1:])
    b[0, :] = b[1, :]
    b[:, 0] = b[:, 1]
    b[-1, :] = b[-2, :]
    b[:, -1] = b[:, -2]
    return b[2::2, 2::2].copy()


def level_values(pred: Prediction, nthresh: int) -> np.ndarray:
    """The level axis of the official output: thresholds for ucm2/pb, 1..n for segs."""
    if pred.kind == "segs":
        # official quirk: nthresh is silently replaced by the number of segmentations
        return np.arange(1, len(pred.data) + 1, dtype=np.float64)
    return thresholds(nthresh)


def boundary_maps(pred: Prediction, levels: np.ndarray):
    """Yield the un-thinned boundary map (h, w) bool of each level (see the module docstring)."""
    if pred.kind == "segs":
        for seg in pred.data:
            yield seg2bdry(seg)
        return
    pb = pred.data[2::2, 2::2] if pred.kind == "ucm2" else pred.data  # ucm2(3:2:end, 3:2:end)
    for t in levels:
        yield pb >= t
