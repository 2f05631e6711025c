"""Region benchmark of one image: PRI, VI and Segmentation Covering, per level.

A port of the official ``evaluation_reg_image.m`` with ``match_segmentations.m`` (covering) and
``match_segmentations2.m`` (Rand index, variation of information). Everything is computed from
contingency tables ``n[u, v]`` = number of pixels with predicted label u and annotator label v
(label 0 included on both axes, as the official tables index ``seg + 1``), kept sparse: a fine
level can have as many regions as pixels.

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


@dataclass
class Table:
    """A sparse contingency table: ``count`` pixels have predicted label ``u`` and GT label ``v``.

    Only non-zero cells are kept (sorted by (u, v)); ``n_seg``/``n_gt`` are the label ranges.
    Shape: u, v, count (nnz,).
    """

    u: np.ndarray
    v: np.ndarray
    count: np.ndarray
    n_seg: int
    n_gt: int

    @classmethod
    def from_labels(cls, seg: np.ndarray, gt: np.ndarray, n_seg: int | None = None, n_gt: int | None = None):
        if n_seg is None and int(seg.max()) + 1 > 4 * seg.size:
            # sparse huge label ids (e.g. 0..2^31): renumber, keeping 0 as 0; metrics are unchanged
            ids, inv = np.unique(np.concatenate([[0], seg.ravel()]), return_inverse=True)
            seg = inv[1:].reshape(seg.shape)
        n_seg = int(seg.max()) + 1 if n_seg is None else n_seg
        n_gt = int(gt.max()) + 1 if n_gt is None else n_gt
        flat = seg.ravel().astype(np.int64) * n_gt + gt.ravel()
        return cls.from_counts(np.bincount(flat, minlength=n_seg * n_gt), n_seg, n_gt)

    @classmethod
    def from_counts(cls, counts: np.ndarray, n_seg: int, n_gt: int):
        nz = np.flatnonzero(counts)
        return cls(nz // n_gt, nz % n_gt, counts[nz].astype(np.float64), n_seg, n_gt)

    def dense(self) -> np.ndarray:
        """(n_seg, n_gt) array."""
        out = np.zeros((self.n_seg, self.n_gt))
        out[self.u, self.v] = self.count
        return out


def contingency(seg: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Dense contingency table of two label maps by one bincount.

    Shape: seg, gt (H, W) -> (max(seg)+1, max(gt)+1).
    """
    return Table.from_labels(seg, gt).dense()


def _sq(a: np.ndarray) -> float:
    a = a[a > 0]  # zeros dropped so that unused labels never change a floating-point sum
    return float(np.dot(a, a))


def rand_index(n) -> float:
    """Rand index from a contingency table, the official formula (after Allen Yang's code).

    ``1 - (sum(n_u^2)/2 + sum(n_v^2)/2 - sum(n^2)) / (N (N-1) / 2)``; ``n`` dense or a :class:`Table`.
    """
    t = n if isinstance(n, Table) else Table.from_counts(np.asarray(n).ravel(), *np.asarray(n).shape)
    N = t.count.sum()
    nu = np.bincount(t.u, t.count, t.n_seg)
    nv = np.bincount(t.v, t.count, t.n_gt)
    return float(1.0 - (_sq(nu) / 2 + _sq(nv) / 2 - _sq(t.count)) / (N * (N - 1) / 2))


def variation_of_information(n) -> float:
    """VI = H1 + H2 - 2 MI from a contingency table; base-2 logarithms as the official code."""
    t = n if isinstance(n, Table) else Table.from_counts(np.asarray(n).ravel(), *np.asarray(n).shape)
    N = t.count.sum()
    p = t.count / N
    p1 = np.bincount(t.u, t.count, t.n_seg) / N
    p2 = np.bincount(t.v, t.count, t.n_gt) / N
    h1 = -np.sum(p1[p1 > 0] * np.log2(p1[p1 > 0]))
    h2 = -np.sum(p2[p2 > 0] * np.log2(p2[p2 > 0]))
    mi = np.sum(p * np.log2(p / (p1[t.u] * p2[t.v])))
    return float(h1 + h2 - 2 * mi)


def level_scores(tables: list[Table]) -> tuple[float, float, float, float, float, float, np.ndarray]:
    """Scores of one level from its per-annotator contingency tables.

    Covering uses the Jaccard overlap |g & s| / |g | s| of GT regions g >= 1 and segments s >= 1
    (``match_segmentations``); a pair that does not intersect has overlap 0.

    Returns:
        (cntR, sumR, cntP, sumP, mean RI, mean VI, best overlap of every GT region) where the
        last is concatenated over annotators, shape (sum_s G_s,).
    """
    ri = float(np.mean([rand_index(t) for t in tables]))
    vi = float(np.mean([variation_of_information(t) for t in tables]))
    n_seg = max(t.n_seg for t in tables)
    seg_best = np.zeros(n_seg)
    gt_best, gt_area = [], []
    for t in tables:
        seg_area = np.bincount(t.u, t.count, n_seg)
        g_area = np.bincount(t.v, t.count, t.n_gt)
        k = (t.u > 0) & (t.v > 0)  # label 0 is never a region (regionprops ignores it)
        u, v, c = t.u[k], t.v[k], t.count[k]
        iou = c / (g_area[v] + seg_area[u] - c)
        best = np.zeros(t.n_gt)
        np.maximum.at(best, v, iou)
        np.maximum.at(seg_best, u, iou)
        gt_best.append(best[1:])
        gt_area.append(g_area[1:])
    gt_best_all, gt_area_all = np.concatenate(gt_best), np.concatenate(gt_area)
    seg_area = np.bincount(tables[0].u, tables[0].count, n_seg)[1:]
    cnt_r = float(np.dot(gt_area_all, gt_best_all))
    cnt_p = float(np.dot(seg_area, seg_best[1:]))
    return cnt_r, float(gt_area_all.sum()), cnt_p, float(seg_area.sum()), ri, vi, gt_best_all


def _ucm2_tables(ucm2: np.ndarray, gts: list[np.ndarray], thr: np.ndarray):
    """Per-annotator tables of each threshold of a ucm2 (nested levels, see the module doc)."""
    order = np.argsort(thr, kind="stable")
    lab, n1 = label8(ucm2 <= thr[order[0]])
    base = lab[1::2, 1::2].astype(np.int64)  # (h, w) finest regions
    closed = base == 0  # pixels whose own ucm2 value exceeds the lowest threshold
    if closed.any():  # each becomes its own base region so that higher levels can relabel it
        base[closed] = n1 + 1 + np.arange(int(closed.sum()))
    n_base = int(base.max()) + 1
    ids, first = np.unique(base.ravel(), return_index=True)
    rep = np.zeros(n_base, dtype=np.int64)
    rep[ids] = first  # one pixel of each base region (row-major index into (h, w))
    base_tables = [Table.from_labels(base, g, n_base, int(g.max()) + 1) for g in gts]
    out = [None] * len(thr)
    for k in order:
        lab, n = label8(ucm2 <= thr[k])
        f = lab[1::2, 1::2].ravel()[rep].astype(np.int64)  # (n_base,) region at t of each base region
        f[0] = 0
        level = []
        for b in base_tables:  # sum the base rows into the rows of level t
            idx = f[b.u] * b.n_gt + b.v
            level.append(Table.from_counts(np.bincount(idx, b.count, (n + 1) * b.n_gt), n + 1, b.n_gt))
        out[k] = level
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
            [Table.from_labels(s, g, None, int(g.max()) + 1) for g in gts]
            for t in levels
            for s in ucm2_to_segmentations(pred.data, [t])
        )
    elif pred.kind == "segs":
        per_level = ([Table.from_labels(s, g, None, int(g.max()) + 1) for g in gts] for s in pred.data)
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
