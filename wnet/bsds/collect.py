"""Dataset-level scores from per-image counts (``collect_eval_reg.m``, ``collect_eval_bdry.m``).

ODS ("optimal dataset scale") picks one level for the whole dataset, OIS ("optimal image scale")
the best level of each image. Ties follow the official code, quirks included:

* covering ODS and per-image "best" levels take the *first* maximum (``max``), covering OIS
  the *last* (``ff(end)``); PRI/VI ODS take the first max/min, PRI/VI OIS the last;
* boundary ODS and per-image F are interpolated between neighbouring levels on 100 points
  (``maxF``), a candidate winning only when strictly better; boundary OIS takes the first max;
* boundary AP is the area under P(R) interpolated linearly on R = 0:0.01:1 after ``unique(R)``,
  outside the recall range counting 0. ``unique`` keeps the last index of a repeated recall
  (MATLAB before R2013a, which produced the published numbers).

Images are numbered 1..N in the order given (the official ``dir`` listing, i.e. sorted names).
The official code passes per-image counts through text files written with ``%10g`` (six
significant digits); ``g_round=True`` (default) rounds them the same way before collecting.
"""

from __future__ import annotations

import numpy as np

from wnet.bsds.boundary import BoundaryResult
from wnet.bsds.region import RegionResult


def _g6(a):
    """Round to six significant digits, as a ``%10g`` write and ``dlmread`` read-back do."""
    a = np.asarray(a, dtype=np.float64)
    return np.vectorize(lambda v: float(f"{v:g}"), otypes=[np.float64])(a) if a.size else a


def _ratio(c, s):
    c, s = np.asarray(c, dtype=np.float64), np.asarray(s, dtype=np.float64)
    return c / (s + (s == 0))


def fmeasure(r, p):
    """F = 2PR / (P + R), 0 when both are 0 (official ``fmeasure``)."""
    r, p = np.asarray(r, dtype=np.float64), np.asarray(p, dtype=np.float64)
    return 2 * p * r / (p + r + ((p + r) == 0))


def max_f(thresh, R, P) -> tuple[float, float, float, float]:
    """Best (T, R, P, F) with linear interpolation between levels (official ``maxF``)."""
    thresh, R, P = (np.asarray(a, dtype=np.float64) for a in (thresh, R, P))
    best = (thresh[0], R[0], P[0], float(fmeasure(R[0], P[0])))
    d = np.linspace(0, 1, 100)  # MATLAB linspace(0,1): 100 points
    for i in range(1, len(thresh)):
        t = thresh[i] * d + thresh[i - 1] * (1 - d)
        r = R[i] * d + R[i - 1] * (1 - d)
        p = P[i] * d + P[i - 1] * (1 - d)
        f = fmeasure(r, p)
        k = int(np.argmax(f))  # first maximum == the loop's strict ">" within this segment
        if f[k] > best[3]:
            best = (t[k], r[k], p[k], float(f[k]))
    return tuple(float(v) for v in best)


def average_precision(R, P) -> float:
    """Area under the PR curve as ``collect_eval_bdry`` computes it."""
    R, P = np.asarray(R, dtype=np.float64), np.asarray(P, dtype=np.float64)
    # unique(R) with the last index of each repeated value
    rev = R[::-1]
    Ru, idx_rev = np.unique(rev, return_index=True)
    Pu = P[::-1][idx_rev]
    if Ru.size <= 1:
        return 0.0
    Ri = np.linspace(0, 1, 101)  # 0:0.01:1
    Pi = np.interp(Ri, Ru, Pu)
    Pi[(Ri < Ru[0]) | (Ri > Ru[-1])] = 0.0  # interp1 gives NaN outside, set to 0
    return float(Pi.sum() * 0.01)


def collect_boundary(results: list[BoundaryResult], g_round: bool = True) -> dict:
    """Boundary ODS/OIS/AP over images (``collect_eval_bdry``).

    Returns:
        dict with ``thresh, R, P, F`` (per level, dataset totals), ``img`` rows
        ``[i, bestT, bestR, bestP, bestF]``, and ``ods`` = (T, R, P, F), ``ois`` = (R, P, F), ``ap``.
    """
    if not results:
        raise ValueError("collect_boundary: no per-image results")
    thresh = _g6(results[0].thresh) if g_round else np.asarray(results[0].thresh, dtype=np.float64)
    tot = {k: np.zeros(len(thresh)) for k in ("cntR", "sumR", "cntP", "sumP")}
    best = dict.fromkeys(tot, 0.0)
    rows = []
    for i, r in enumerate(results, start=1):
        if g_round:
            r = BoundaryResult(*(_g6(getattr(r, k)) for k in ("thresh", "cntR", "sumR", "cntP", "sumP")))
        R, P = _ratio(r.cntR, r.sumR), _ratio(r.cntP, r.sumP)
        rows.append([i, *max_f(thresh, R, P)])
        k = int(np.argmax(fmeasure(R, P)))  # ff(1): first maximum
        for key in tot:
            tot[key] += getattr(r, key)
            best[key] += getattr(r, key)[k]
    R, P = _ratio(tot["cntR"], tot["sumR"]), _ratio(tot["cntP"], tot["sumP"])
    r_max, p_max = float(_ratio(best["cntR"], best["sumR"])), float(_ratio(best["cntP"], best["sumP"]))
    return {
        "thresh": thresh,
        "R": R,
        "P": P,
        "F": fmeasure(R, P),
        "img": np.asarray(rows),
        "ods": max_f(thresh, R, P),
        "ois": (r_max, p_max, float(fmeasure(r_max, p_max))),
        "ap": average_precision(R, P),
    }


def _last_argmax(a) -> int:
    return len(a) - 1 - int(np.argmax(np.asarray(a)[::-1]))


def collect_region(results: list[RegionResult], g_round: bool = True) -> dict:
    """Covering, PRI and VI at ODS/OIS over images (``collect_eval_reg``).

    Returns:
        dict with per-level ``thresh, cover, ri, vi``, per-image ``img`` rows
        ``[i, bestT, bestR, bestP]``, ``cover_ods`` = (T, SC), ``cover_ois``, ``cover_best``,
        ``ri_ods`` = (T, PRI), ``ri_ois``, ``vi_ods`` = (T, VI), ``vi_ois``.
    """
    if not results:
        raise ValueError("collect_region: no per-image results")
    thresh = _g6(results[0].thresh) if g_round else np.asarray(results[0].thresh, dtype=np.float64)
    T = len(thresh)
    cntR_t, sumR_t = np.zeros(T), np.zeros(T)
    cntR_b = sumR_b = cntR_best_total = 0.0
    ri_t, vi_t = np.zeros(T), np.zeros(T)
    ri_best = vi_best = 0.0
    rows = []
    for i, r in enumerate(results, start=1):
        if g_round:
            keys = ("thresh", "cntR", "sumR", "cntP", "sumP", "sumRI", "sumVOI", "cntR_best")
            r = RegionResult(*(_g6(getattr(r, k)) for k in keys))
        R, P = _ratio(r.cntR, r.sumR), _ratio(r.cntP, r.sumP)
        k = int(np.argmax(R))  # [bestR, ind] = max(R): first
        rows.append([i, r.thresh[k], R[k], P[k]])
        cntR_t += r.cntR
        sumR_t += r.sumR
        k = _last_argmax(R)  # ff(end)
        cntR_b += r.cntR[k]
        sumR_b += r.sumR[k]
        cntR_best_total += float(r.cntR_best)
        ri_t += r.sumRI
        vi_t += r.sumVOI
        ri_best += r.sumRI[_last_argmax(r.sumRI)]
        vi_best += r.sumVOI[_last_argmax(-r.sumVOI)]
    n = len(results)
    R = _ratio(cntR_t, sumR_t)
    k = int(np.argmax(R))
    ri_t, vi_t = ri_t / n, vi_t / n
    kr, kv = int(np.argmax(ri_t)), int(np.argmin(vi_t))
    return {
        "thresh": thresh,
        "cover": R,
        "ri": ri_t,
        "vi": vi_t,
        "img": np.asarray(rows),
        "cover_ods": (float(thresh[k]), float(R[k])),
        "cover_ois": float(_ratio(cntR_b, sumR_b)),
        "cover_best": float(cntR_best_total / sumR_t[0]),  # official divides by sumR_total(1)
        "ri_ods": (float(thresh[kr]), float(ri_t[kr])),
        "ri_ois": ri_best / n,
        "vi_ods": (float(thresh[kv]), float(vi_t[kv])),
        "vi_ois": vi_best / n,
    }
