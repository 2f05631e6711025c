"""Region benchmark of one image: PRI, VI and Segmentation Covering, per level.

A port of the official ``evaluation_reg_image.m`` with ``match_segmentations.m`` (covering) and
``match_segmentations2.m`` (Rand index, variation of information). Everything is computed from
contingency tables ``n[u, v]`` = number of pixels with predicted label u and annotator label v
(label 0 included on both axes, as the official tables index ``seg + 1``).

Speed: for a ucm2 the levels are nested, so the table of each level is the table of the finest
level with its rows summed by a label map (``f_t``: finest region -> region at t). One bincount
per annotator and one connected-component pass per threshold replace a bincount per threshold
and annotator; the numbers are the same (integer counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wnet.bsds.levels import Prediction, label8, ucm2_to_segmentations


@dataclass
class RegionResult:
    """Per-level counts of one image, named as in the official ``_ev2/_ev3/_ev4`` files.

    Shape: every array is (T,), T = number of levels.
    """

    thresh: np.ndarray
    cntR: np.ndarray  # sum over GT regions (all annotators) of area * best overlap with a predicted region
    sumR: np.ndarray  # sum over GT regions of area (= number of annotators * pixels)
    cntP: np.ndarray  # sum over predicted regions (label >= 1) of area * best overlap with any GT region
    sumP: np.ndarray  # predicted area with label >= 1
    sumRI: np.ndarray  # Rand index averaged over annotators (the official name; it is a mean)
    sumVOI: np.ndarray  # variation of information (log2) averaged over annotators
    cntR_best: float = 0.0  # GT regions' best overlap over all levels, area-weighted ("SC best")
    extra: dict = field(default_factory=dict)


def contingency(
    seg: np.ndarray, gt: np.ndarray, n_seg: int | None = None, n_gt: int | None = None
) -> np.ndarray:
    """Contingency table of two label maps by one bincount.

    Shape: seg, gt (H, W) -> (max(seg)+1, max(gt)+1) int64 (or the given sizes).
    """
    n_seg = int(seg.max()) + 1 if n_seg is None else n_seg
    n_gt = int(gt.max()) + 1 if n_gt is None else n_gt
    flat = seg.ravel().astype(np.int64) * n_gt + gt.ravel()
    return np.bincount(flat, minlength=n_seg * n_gt).reshape(n_seg, n_gt)


def rand_index(n: np.ndarray) -> float:
    """Rand index from a contingency table, the official formula (after Allen Yang's code).

    ``1 - (sum(n_u^2)/2 + sum(n_v^2)/2 - sum(n^2)) / (N (N-1) / 2)``.
    """
    n = n.astype(np.float64)
    N = n.sum()
    nu, nv = n.sum(1), n.sum(0)
    return float(1.0 - (np.dot(nu, nu) / 2 + np.dot(nv, nv) / 2 - (n * n).sum()) / (N * (N - 1) / 2))


def variation_of_information(n: np.ndarray) -> float:
    """VI = H1 + H2 - 2 MI from a contingency table; base-2 logarithms as the official code."""
    p = n.astype(np.float64) / n.sum()
    p1, p2 = p.sum(1), p.sum(0)
    h1 = -np.sum(p1[p1 > 0] * np.log2(p1[p1 > 0]))
    h2 = -np.sum(p2[p2 > 0] * np.log2(p2[p2 > 0]))
    nz = p > 0
    outer = np.outer(p1, p2)
    mi = np.sum(p[nz] * np.log2(p[nz] / outer[nz]))
    return float(h1 + h2 - 2 * mi)


def _overlaps(n: np.ndarray) -> np.ndarray:
    """Jaccard overlap |g & s| / |g | s| of every GT region g >= 1 (rows) and segment s >= 1 (cols).

    Args:
        n: (S+1, G+1) table, predicted labels on rows.
    Shape: -> (G, S).
    """
    n = n.astype(np.float64)
    seg_area, gt_area = n.sum(1), n.sum(0)
    inter = n[1:, 1:].T  # (G, S)
    union = gt_area[1:, None] + seg_area[None, 1:] - inter
    # 0/0 only for a label absent from both maps; MATLAB's max skips that NaN, 0 is equivalent
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def level_scores(tables: list[np.ndarray]) -> tuple[float, float, float, float, float, float, np.ndarray]:
    """Scores of one level from its per-annotator contingency tables.

    Returns:
        (cntR, sumR, cntP, sumP, mean RI, mean VI, best overlap of every GT region) where the
        last is concatenated over annotators, shape (sum_s G_s,).
    """
    ri = np.mean([rand_index(n) for n in tables])
    vi = np.mean([variation_of_information(n) for n in tables])
    gt_best, gt_area = [], []
    seg_best = np.zeros(tables[0].shape[0] - 1)
    for n in tables:
        ov = _overlaps(n)  # (G_s, S)
        if ov.size:
            gt_best.append(ov.max(1))
            seg_best = np.maximum(seg_best, ov.max(0))
        else:
            gt_best.append(np.zeros(ov.shape[0]))
        gt_area.append(n.sum(0)[1:])
    gt_best_all, gt_area_all = np.concatenate(gt_best), np.concatenate(gt_area).astype(np.float64)
    seg_area = tables[0].sum(1)[1:].astype(np.float64)
    cnt_r = float(np.dot(gt_area_all, gt_best_all))
    cnt_p = float(np.dot(seg_area, seg_best))
    return cnt_r, float(gt_area_all.sum()), cnt_p, float(seg_area.sum()), ri, vi, gt_best_all


def _aggregate(base: np.ndarray, f: np.ndarray, n_rows: int) -> np.ndarray:
    """Sum the rows of ``base`` (R, G) into ``n_rows`` rows by the map ``f`` (R,)."""
    g = base.shape[1]
    idx = (f[:, None] * g + np.arange(g)[None, :]).ravel()
    return np.bincount(idx, weights=base.ravel(), minlength=n_rows * g).reshape(n_rows, g)


def _ucm2_tables(ucm2: np.ndarray, gts: list[np.ndarray], thr: np.ndarray):
    """Yield the per-annotator tables of each threshold of a ucm2 (nested levels, see module doc)."""
    order = np.argsort(thr, kind="stable")
    if np.any(np.diff(thr[order]) < 0):
        raise ValueError("thresholds must be finite")
    lab, n1 = label8(ucm2 <= thr[order[0]])
    base = lab[1::2, 1::2].astype(np.int64)  # (h, w) finest regions
    closed = base == 0  # pixels whose own ucm2 value exceeds the lowest threshold
    if closed.any():  # each becomes its own base region so that higher levels can relabel it
        base[closed] = n1 + 1 + np.arange(int(closed.sum()))
    n_base = int(base.max()) + 1
    ids, first = np.unique(base.ravel(), return_index=True)
    rep = np.zeros(n_base, dtype=np.int64)
    rep[ids] = first  # one pixel of each base region (row-major index into (h, w))
    base_tables = [contingency(base, g, n_base, int(g.max()) + 1) for g in gts]
    out = [None] * len(thr)
    for k in order:
        lab, n = label8(ucm2 <= thr[k])
        f = lab[1::2, 1::2].ravel()[rep].astype(np.int64)  # (n_base,) region at t of each base region
        f[0] = 0
        out[k] = [_aggregate(b, f, n + 1) for b in base_tables]
    return out


def region_image(
    pred: Prediction, gts: list[np.ndarray], levels: np.ndarray, fast: bool = True
) -> RegionResult:
    """Region benchmark of one image (official ``evaluation_reg_image``).

    Args:
        pred: a resolved ``ucm2`` or ``segs`` prediction (region scores of a soft boundary map are
            undefined, as in the official code).
        gts: the annotators' label maps (labels from 1).
        levels: thresholds (ucm2) or 1..n (segs).
        fast: use the nested-levels shortcut for a ucm2; False labels and counts every threshold
            and annotator from scratch (the literal official loop; same numbers).
    Returns:
        :class:`RegionResult`.
    References:
        Arbelaez et al., TPAMI 2011, Sec. 3.2 (covering, PRI, VI); ``evaluation_reg_image.m``.
    """
    if pred.kind == "ucm2" and fast:
        per_level = _ucm2_tables(pred.data, gts, np.asarray(levels, dtype=np.float64))
    elif pred.kind == "ucm2":
        per_level = (
            [contingency(s, g, None, int(g.max()) + 1) for g in gts]
            for t in levels
            for s in ucm2_to_segmentations(pred.data, [t])
        )
    elif pred.kind == "segs":
        per_level = ([contingency(s, g, None, int(g.max()) + 1) for g in gts] for s in pred.data)
    else:
        raise ValueError(
            f"{pred.name}: the region benchmark needs a ucm2 or segmentations, not a {pred.kind}"
        )
    T = len(levels)
    cols = {k: np.zeros(T) for k in ("cntR", "sumR", "cntP", "sumP", "sumRI", "sumVOI")}
    best = None
    for t, tables in enumerate(per_level):
        cr, sr, cp, sp, ri, vi, gt_best = level_scores(tables)
        for k, v in zip(cols, (cr, sr, cp, sp, ri, vi), strict=True):
            cols[k][t] = v
        best = gt_best if best is None else np.maximum(best, gt_best)
    gt_area = np.concatenate([np.bincount(g.ravel(), minlength=int(g.max()) + 1)[1:] for g in gts])
    return RegionResult(
        thresh=np.asarray(levels, dtype=np.float64), cntR_best=float(np.dot(gt_area, best)), **cols
    )
