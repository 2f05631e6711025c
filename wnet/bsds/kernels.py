"""The boundary matcher's optional C kernels (``matching.c``), loaded on first use.

Two functions, each the same method as a pure-Python/scipy path that stays the fallback:

* ``ssp_augment``: the shortest-augmenting-path searches of :mod:`wnet.bsds.ssp` (same order, same
  tie-breaking, so the same assignment);
* ``max_matching``: a maximum matching by Hopcroft-Karp for :mod:`wnet.bsds.assignment` (its
  size and the Dulmage-Mendelsohn sets derived from it do not depend on which maximum matching).

The source is compiled with the system C compiler by :mod:`wnet.cbuild` (cached, about 1 s once).
Without a compiler, or with ``WNET_MATCHING_KERNEL=0``, :func:`library` returns None (with one
warning in the first case) and the matcher runs its Python and scipy paths: same counts, slower on
dense boundary maps (docs/bsds.md).
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from wnet import cbuild

_SOURCE = Path(__file__).with_name("matching.c")
_ENV = "WNET_MATCHING_KERNEL"  # 0: always the Python / scipy paths
_lock = threading.Lock()
_state: dict = {}  # "lib": the loaded library, or "error": why there is none


def _load() -> ctypes.CDLL:
    lib = cbuild.load(_SOURCE)
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.ssp_augment.argtypes = [i64, i64, *[p] * 8, i64]
    lib.max_matching.argtypes = [i64, i64, *[p] * 4]
    lib.ssp_augment.restype = lib.max_matching.restype = i64
    return lib


def library(required: bool = False) -> ctypes.CDLL | None:
    """The loaded kernels, or None (``required``: raise instead, naming why)."""
    lib = cbuild.load_once(
        _state, _lock, _ENV, _load, "wnet.bsds.kernels",
        "the boundary matcher uses its Python/scipy paths (same counts, slower on dense maps)",
    )  # fmt: skip
    if required and lib is None:
        raise RuntimeError(f"wnet.bsds.kernels: C kernels unavailable ({_state['error']})")
    return lib


def available() -> bool:
    """Whether the C kernels load (compiling them on the first call)."""
    return library() is not None


def call(fn, *args) -> int:
    """Call a kernel: numpy arguments as pointers (int64 / float64 arrays, modified in place when
    they already have that dtype and are contiguous), ints as int64. Raises MemoryError on -2."""
    conv = []
    for a in args:
        if isinstance(a, np.ndarray):
            want = np.float64 if a.dtype.kind == "f" else np.int64
            if a.dtype != want or not a.flags.c_contiguous:
                a = np.ascontiguousarray(a, dtype=want)  # a copy: only for read-only inputs
            conv.append(a)
        else:
            conv.append(int(a))
    rc = fn(*(a.ctypes.data if isinstance(a, np.ndarray) else a for a in conv))
    if rc == -2:
        raise MemoryError(f"wnet.bsds.kernels: {fn.__name__} ran out of memory")
    return rc


def max_matching(ei: np.ndarray, ej: np.ndarray, n1: int, n2: int, lib) -> np.ndarray:
    """A maximum matching of the edges (ei[k], ej[k]): (n1,) int64 partner of each left vertex or -1."""
    if ei.size > 1 and np.any(ei[1:] < ei[:-1]):  # the matcher passes them grouped by row already
        order = np.argsort(ei, kind="stable")
        ei, ej = ei[order], ej[order]
    ptr = np.r_[0, np.cumsum(np.bincount(ei, minlength=n1))]
    mate_l, mate_r = np.empty(n1, dtype=np.int64), np.empty(n2, dtype=np.int64)
    call(lib.max_matching, n1, n2, ptr, ej, mate_l, mate_r)
    return mate_l
