"""Figures over training seeds: mean ± sample std cells, and the two claims the results tables make.

* "A beats B" on a metric holds only beyond the spread: the intervals mean ± std (sample std,
  ddof = 1) of A and B do not overlap (:func:`beats`).
* A score "transfers" to another split when no seed's score there falls below the spread of the
  same seeds on the split it was tuned on, mean ± 2 std (:func:`inside_spread`, :func:`below_spread`):
  inside it, or above it (better on the unseen split than on the one it was tuned on).
"""

from __future__ import annotations

import statistics

LOWER_IS_BETTER = {"vi_ods", "vi_ois"}


def stats(values: list[float]) -> tuple[float, float]:
    """(mean, sample std); std 0 for one value."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(values: list[float], digits: int = 3) -> str:
    """``mean ± std`` to ``digits`` decimals; the mean alone for one value or no spread; '' for none."""
    if not values:
        return ""
    mean, std = stats(values)
    return f"{mean:.{digits}f}" if len(values) == 1 or std == 0 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def beats(a: list[float], b: list[float], col: str) -> bool:
    """A beats B on ``col`` beyond the spread: their mean ± std intervals do not overlap, A better."""
    (ma, sa), (mb, sb) = stats(a), stats(b)
    return ma + sa < mb - sb if col in LOWER_IS_BETTER else ma - sa > mb + sb


def spread(values: list[float], width: float = 2.0) -> tuple[float, float]:
    """The interval mean ± ``width`` std of ``values``."""
    mean, std = stats(values)
    return mean - width * std, mean + width * std


def inside_spread(values: list[float], reference: list[float], width: float = 2.0) -> int:
    """How many of ``values`` lie inside ``reference``'s mean ± ``width`` std."""
    lo, hi = spread(reference, width)
    return sum(lo <= v <= hi for v in values)


def below_spread(values: list[float], reference: list[float], width: float = 2.0) -> int:
    """How many of ``values`` lie below ``reference``'s mean - ``width`` std."""
    return sum(v < spread(reference, width)[0] for v in values)


def by_key(rows: list[dict], cols: list[str], key=lambda r: r["method"]) -> dict:
    """``{key(row): {col: [values over the rows with that key]}}``, in first-appearance order;
    empty cells and 'nan' are left out."""
    out: dict = {}
    for r in rows:
        m = out.setdefault(key(r), {c: [] for c in cols})
        for c in cols:
            if r.get(c) not in (None, "", "nan"):
                m[c].append(float(r[c]))
    return out
