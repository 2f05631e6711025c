"""Optional compiled CPU kernels for :mod:`wnet.affinity`: the same weights and windowed sums, fused.

PyTorch's eager ops make one pass over memory per offset (68 for r = 5); ``window_kernel.c``
does the whole window in one pass per image row, with the per-class sums of the N-Cut fused
in. It is plain C (vector extensions, no torch headers), built on first use with the system C
compiler (about 3 s; kept in ``~/.cache/wnet`` or ``$WNET_CACHE_DIR`` under a key of the source,
compiler, flags and CPU) and called through ctypes on the tensors' memory; ctypes releases the
GIL, so rows are split over ``torch.get_num_threads()`` threads.

The kernels compute the same quantities as the eager code to rounding: the weights use their
own vectorised exp (Taylor series after Cody-Waite range reduction; within 1 ulp of the exact
value, tests/test_affinity.py) and the sums are accumulated in another order. Where no compiler is found, the build
fails, or ``WNET_WINDOW_KERNEL=0`` is set in the environment, :func:`available` is False and
:mod:`wnet.affinity` keeps to its PyTorch path (with one warning saying why, except when disabled
on purpose). Only CPU float32/float64 tensors that need no autograd graph go through here.
"""

from __future__ import annotations

import ctypes
import functools
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from wnet import cbuild

_SOURCE = Path(__file__).with_name("window_kernel.c")
_ENV = "WNET_WINDOW_KERNEL"
_lock = threading.Lock()
_state: dict = {}  # "lib": the loaded library, or "error": why there is none; "pool": worker threads

_P, _I64 = ctypes.c_void_p, ctypes.c_int64
_TYPES = {torch.float32: ("f32", ctypes.c_float, 8), torch.float64: ("f64", ctypes.c_double, 4)}


def _build() -> ctypes.CDLL:
    """The library of ``window_kernel.c`` (:func:`wnet.cbuild.load`), with its functions' types."""
    lib = cbuild.load(_SOURCE)
    for suf, real, _ in _TYPES.values():
        getattr(lib, f"weights_{suf}").argtypes = [_P, *[_I64] * 4, _P, _P, real, real, real, _P, _I64, _I64]
        getattr(lib, f"apply_{suf}").argtypes = [*[_P] * 8, *[_I64] * 6, real, *[_P] * 4, _I64]
        getattr(lib, f"apply_{suf}").argtypes += [real, real, real, _P, _I64, _I64]
        getattr(lib, f"ncut_grad_{suf}").argtypes = [*[_P] * 4, _I64, _I64, _P, _I64, _I64]
    return lib


def _library() -> ctypes.CDLL | None:
    return cbuild.load_once(
        _state,
        _lock,
        _ENV,
        _build,
        "wnet.window_kernel",
        "using the PyTorch path (same results, slower on CPU)",
    )


def available() -> bool:
    """Whether the compiled kernels can be used (builds them on the first call)."""
    return _library() is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (None when it is True or was not asked yet)."""
    return _state.get("error")


def supports(*tensors: torch.Tensor) -> bool:
    """CPU float32/float64 tensors of one dtype, needing no autograd graph."""
    dtype = tensors[0].dtype
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return not grad and all(t.device.type == "cpu" and t.dtype == dtype for t in tensors) and dtype in _TYPES


def _chunks(rows: int) -> list[tuple[int, int]]:
    n = max(1, min(torch.get_num_threads(), rows))
    bounds = [rows * i // n for i in range(n + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(n) if bounds[i + 1] > bounds[i]]


def _run(fn, chunks: list[tuple[int, int]], args_of) -> None:
    """Call ``fn(*args_of(i), row0, row1)`` for each chunk; in worker threads when there are several."""
    if len(chunks) <= 1:
        for c in chunks:  # none for an empty image
            fn(*args_of(0), *c)
        return
    with _lock:
        pool = _state.get("pool")
        if pool is None or pool._max_workers < len(chunks):
            pool = _state["pool"] = ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="wnet")
    for f in [pool.submit(fn, *args_of(i), *c) for i, c in enumerate(chunks)]:
        f.result()


@functools.lru_cache(maxsize=64)
def _offset_arrays(offsets: tuple) -> tuple[ctypes.Array, ctypes.Array, int]:
    """dy and dx as C arrays, and the reach r = max |dy|, |dx| (cached: built on every call otherwise)."""
    m = len(offsets)
    dy = (_I64 * max(m, 1))(*[dy for dy, _ in offsets])
    dx = (_I64 * max(m, 1))(*[dx for _, dx in offsets])
    return dy, dx, max((max(abs(a), abs(b)) for a, b in offsets), default=0)


def pair_weights(features: torch.Tensor, offsets, sigma_x: float, sigma_i: float | None) -> torch.Tensor:
    """:func:`wnet.affinity.pair_weights`' weights, computed by the kernel.

    Shape:
        features: (B, C, H, W) float32/float64 on CPU; returns (B, M, H, W), M = len(offsets).
    """
    suf, real, _ = _TYPES[features.dtype]
    b, _, h, w = features.shape
    f = features.contiguous()
    out = features.new_empty(b, len(offsets), h, w)
    fptr, c, inv_x2, inv_i2, floor = _weight_args(f, offsets, sigma_x, sigma_i, real)
    dy, dx, _ = _offset_arrays(tuple(offsets))
    args = (fptr, c, h, w, len(offsets), dy, dx, inv_x2, inv_i2, floor, out.data_ptr())
    _run(getattr(_library(), f"weights_{suf}"), _chunks(b * h), lambda i: args)
    return out


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _weight_args(features, offsets, sigma_x: float, sigma_i: float | None, real) -> tuple:
    """(f, C, 1 / sigma_x^2, -1 / sigma_i^2 or 0, floor) as the kernels take them."""
    inv_i2 = 0.0 if sigma_i is None else -1.0 / (sigma_i * sigma_i)
    # w := 0 below 1.5 e tiny, as wnet.affinity.pair_weights (the kernel's exp is exact enough there)
    floor = math.log(torch.finfo(features.dtype).tiny) + 1.0 + math.log(1.5)
    c = 0 if sigma_i is None else features.shape[1]
    return features.data_ptr(), c, real(1.0 / (sigma_x * sigma_x)), real(inv_i2), real(floor)


def _apply(x: torch.Tensor, offsets, weights, self_weight: float, sums: bool, features=None, sigmas=None):
    """W x (and with ``sums`` d, A, D per chunk) by ``apply_*`` of window_kernel.c: with the
    weights given, or computed on the fly from ``features`` and ``sigmas = (sigma_x, sigma_i)``."""
    suf, real, lanes = _TYPES[x.dtype]
    b, k, h, w = x.shape
    m = len(offsets)
    dy, dx, r = _offset_arrays(tuple(offsets))
    kq = -(-k // lanes) * lanes  # classes rounded up to whole vectors
    src = x.contiguous()
    wts = None if weights is None else weights.contiguous()
    feats = None if features is None else features.contiguous()
    out = x.new_empty(b, k, h, w)
    deg = x.new_empty(b, 1, h, w) if sums else None
    chunks = _chunks(b * h)
    acc = torch.zeros(2, len(chunks), b, k, dtype=torch.float64) if sums else None  # A, D per chunk
    ring = x.new_empty(len(chunks), (2 * r + 1) * (w + 2 * r) * kq)  # packed input rows y - r .. y + r
    dv = x.new_empty(len(chunks), w)  # one row of d
    tile = x.new_empty(len(chunks), lanes * kq)
    # weights of rows y - r .. y, each row padded by r zeros on both sides, and one zero row
    wring = x.new_zeros(len(chunks), ((r + 1) * m + 1) * (w + 2 * r))
    fargs = (
        (None, 0, real(0), real(0), real(0)) if feats is None else _weight_args(feats, offsets, *sigmas, real)
    )

    def args_of(i):
        a_ptr, d_ptr = (acc[0, i].data_ptr(), acc[1, i].data_ptr()) if sums else (None, None)
        return (src.data_ptr(), _ptr(wts), out.data_ptr(), _ptr(deg), a_ptr, d_ptr, dy, dx, m, k, h, w, r, kq,
                real(self_weight), ring[i].data_ptr(), dv[i].data_ptr(), tile[i].data_ptr(), *fargs,
                wring[i].data_ptr())  # fmt: skip

    _run(getattr(_library(), f"apply_{suf}"), chunks, args_of)
    return out, deg, acc


def window_apply(x: torch.Tensor, offsets, weights: torch.Tensor, self_weight: float) -> torch.Tensor:
    """:func:`wnet.affinity.window_apply` by the kernel.

    Shape:
        x: (B, K, H, W); weights: (B, M, H, W); returns (B, K, H, W).
    """
    return _apply(x, offsets, weights, self_weight, sums=False)[0]


def ncut_terms(probs: torch.Tensor, offsets, features: torch.Tensor, sigma_x: float, sigma_i: float | None):
    """The soft N-Cut's forward terms in one pass: ``(W S, d, A, D)``.

    The weights are :func:`pair_weights`' (same C code), computed row by row inside the pass and
    never stored. d = W 1; A_k = sum_u S_k(u) (W S_k)(u) and D_k = sum_u S_k(u) d(u) are
    accumulated and returned in float64.

    Shape:
        probs: (B, K, H, W); features: (B, C, H, W); returns (B, K, H, W), (B, 1, H, W), (B, K), (B, K).
    """
    feats = features.to(probs.dtype)
    out, deg, acc = _apply(probs, offsets, None, 1.0, True, feats, (sigma_x, sigma_i))
    total = acc.sum(1)  # (2, B, K): the chunks' partial sums, added in a fixed order
    return out, deg, total[0], total[1]


def ncut_grad(ws: torch.Tensor, deg: torch.Tensor, c_ws: torch.Tensor, c_d: torch.Tensor) -> torch.Tensor:
    """``c_ws[b, k] (W S_k)(u) + c_d[b, k] d(u)`` in one pass.

    Shape:
        ws: (B, K, H, W); deg: (B, 1, H, W); c_ws, c_d: (B, K); returns (B, K, H, W).
    """
    b, k, h, w = ws.shape
    suf = _TYPES[ws.dtype][0]
    ws, deg = ws.contiguous(), deg.contiguous()
    c1, c2 = c_ws.to(ws.dtype).contiguous(), c_d.to(ws.dtype).contiguous()
    out = torch.empty_like(ws)
    args = (ws.data_ptr(), deg.data_ptr(), c1.data_ptr(), c2.data_ptr(), k, h * w, out.data_ptr())
    _run(getattr(_library(), f"ncut_grad_{suf}"), _chunks(b * k), lambda i: args)
    return out
