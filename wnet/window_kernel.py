"""Optional compiled CPU kernels for :mod:`wnet.affinity`: the same weights and windowed sums, fused.

PyTorch's eager ops make one pass over memory per offset (68 for r = 5); ``window_kernel.c``
does the whole window in one pass per image row, with the per-class sums of the N-Cut fused
in. It is plain C (vector extensions, no torch headers), built on first use with the system C
compiler into a temporary directory (about 1 s) and called through ctypes on the tensors'
memory; ctypes releases the GIL, so rows are split over ``torch.get_num_threads()`` threads.

The kernels compute the same quantities as the eager code to rounding: the weights use their
own vectorised exp (Taylor series after Cody-Waite range reduction; within 2 ulp of the exact
value) and the sums are accumulated in another order. Where no compiler is found, the build
fails, or ``WNET_WINDOW_KERNEL=0`` is set in the environment, :func:`available` is False and
:mod:`wnet.affinity` keeps to its PyTorch path (with one warning saying why, except when disabled
on purpose). Only CPU float32/float64 tensors that need no autograd graph go through here.
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

_SOURCE = Path(__file__).with_name("window_kernel.c")
_ENV = "WNET_WINDOW_KERNEL"
_lock = threading.Lock()
_state: dict = {}  # "lib": the loaded library, or "error": why there is none; "pool": worker threads

_P, _I64 = ctypes.c_void_p, ctypes.c_int64
_TYPES = {torch.float32: ("f32", ctypes.c_float, 8), torch.float64: ("f64", ctypes.c_double, 4)}


def _compile(cc: str, out: str, native: bool) -> None:
    flags = ["-std=gnu99", "-O3", "-ffp-contract=fast", "-fPIC", "-shared"] + (
        ["-march=native"] if native else []
    )
    subprocess.run([cc, *flags, "-o", out, str(_SOURCE)], check=True, capture_output=True, timeout=300)


def _build() -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RuntimeError("no C compiler found (cc, gcc or clang on PATH, or $CC)")
    if not _SOURCE.is_file():
        raise RuntimeError(f"kernel source {_SOURCE} is missing")
    tmp = tempfile.mkdtemp(prefix="wnet_window_kernel_")
    try:
        so = os.path.join(tmp, "window_kernel.so")
        try:
            _compile(cc, so, native=True)  # vector width of this CPU; built per process, so no mismatch
        except subprocess.CalledProcessError:
            _compile(cc, so, native=False)  # compilers that reject -march=native
        lib = ctypes.CDLL(so)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a loaded library stays mapped after its file is gone
    for suf, real, _ in _TYPES.values():
        getattr(lib, f"weights_{suf}").argtypes = [_P, *[_I64] * 4, _P, _P, real, real, real, _P, _I64, _I64]
        getattr(lib, f"apply_{suf}").argtypes = [_P, _I64, _P, _P, _P, _P, _P, _P, _P]
        getattr(lib, f"apply_{suf}").argtypes += [*[_I64] * 5, real, _P, _I64, _I64]
        getattr(lib, f"pack_{suf}").argtypes = [_P, *[_I64] * 5, _P, _I64, _I64]
        getattr(lib, f"unpack_{suf}").argtypes = [_P, _P, _P, _P, *[_I64] * 4, _P, _I64, _I64]
    return lib


def _library() -> ctypes.CDLL | None:
    with _lock:
        if "lib" not in _state and "error" not in _state:
            if os.environ.get(_ENV, "1") == "0":
                _state["error"] = f"disabled by {_ENV}=0"
            else:
                try:
                    _state["lib"] = _build()
                except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                    detail = getattr(err, "stderr", b"") or b""
                    _state["error"] = f"{err} {detail.decode(errors='replace')[-500:]}".strip()
                    warnings.warn(
                        f"wnet.window_kernel: compiled kernel unavailable ({_state['error']}); "
                        "using the PyTorch path (same results, slower on CPU)",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        return _state.get("lib")


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
    if len(chunks) == 1:
        fn(*args_of(0), *chunks[0])
        return
    with _lock:
        pool = _state.get("pool")
        if pool is None or pool._max_workers < len(chunks):
            pool = _state["pool"] = ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="wnet")
    for f in [pool.submit(fn, *args_of(i), *c) for i, c in enumerate(chunks)]:
        f.result()


def _offset_arrays(offsets) -> tuple[ctypes.Array, ctypes.Array]:
    m = len(offsets)
    return (_I64 * max(m, 1))(*[dy for dy, _ in offsets]), (_I64 * max(m, 1))(*[dx for _, dx in offsets])


def pair_weights(features: torch.Tensor, offsets, sigma_x: float, sigma_i: float | None) -> torch.Tensor:
    """:func:`wnet.affinity.pair_weights`' weights, computed by the kernel.

    Shape:
        features: (B, C, H, W) float32/float64 on CPU; returns (B, M, H, W), M = len(offsets).
    """
    lib = _library()
    suf, real, _ = _TYPES[features.dtype]
    b, c, h, w = features.shape
    f = features.contiguous()
    out = features.new_empty(b, len(offsets), h, w)
    inv_i2 = 0.0 if sigma_i is None else -1.0 / (sigma_i * sigma_i)
    floor = math.log(torch.finfo(features.dtype).tiny) + 1.0  # as wnet.affinity.pair_weights
    dy, dx = _offset_arrays(offsets)
    fn = getattr(lib, f"weights_{suf}")
    args = (f.data_ptr(), 0 if sigma_i is None else c, h, w, len(offsets), dy, dx)
    args += (real(1.0 / (sigma_x * sigma_x)), real(inv_i2), real(floor), out.data_ptr())
    _run(fn, _chunks(b * h), lambda i: args)
    return out


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _pack(x: torch.Tensor, r: int) -> torch.Tensor:
    """(B, K, H, W) -> zero-padded (B, H + 2r, W + 2r, Kq): each pixel's K values (rounded up to a
    whole vector, Kq) contiguous, so the kernel loads aligned vectors of classes."""
    suf, _, lanes = _TYPES[x.dtype]
    b, k, h, w = x.shape
    kq = -(-k // lanes) * lanes
    src = x.contiguous()
    out = x.new_empty(b, h + 2 * r, w + 2 * r, kq)
    args = (src.data_ptr(), k, h, w, r, kq, out.data_ptr())
    _run(getattr(_library(), f"pack_{suf}"), _chunks(b * (h + 2 * r)), lambda i: args)
    return out


def _unpack(packed, k: int, deg=None, c1=None, c2=None) -> torch.Tensor:
    """(B, H, W, Kq) -> (B, K, H, W): ``c1[b, k] packed[b, y, x, k] + c2[b, k] deg[b, y, x]``."""
    suf = _TYPES[packed.dtype][0]
    b, h, w, kq = packed.shape
    out = packed.new_empty(b, k, h, w)
    c1, c2 = (None, None) if c1 is None else (c1.contiguous(), c2.contiguous())
    args = (packed.data_ptr(), _ptr(deg), _ptr(c1), _ptr(c2), k, h, w, kq, out.data_ptr())
    _run(getattr(_library(), f"unpack_{suf}"), _chunks(b * h), lambda i: args)
    return out


def _apply(x: torch.Tensor, offsets, weights: torch.Tensor, self_weight: float, sums: bool):
    suf, real, _ = _TYPES[x.dtype]
    b, k, h, w = x.shape
    m = len(offsets)
    r = max((max(abs(dy), abs(dx)) for dy, dx in offsets), default=0)
    xp = _pack(x, r)  # (B, H + 2r, W + 2r, Kq)
    kq = xp.shape[-1]
    wts = weights.contiguous()
    out = x.new_empty(b, h, w, kq)  # W x, packed like xp (without the border)
    deg = x.new_empty(b, 1, h, w) if sums else None
    chunks = _chunks(b * h)
    acc = torch.zeros(2, len(chunks), b, k, dtype=torch.float64) if sums else None  # A, D per chunk
    scratch = x.new_empty(len(chunks), (2 * m + 1) * w)  # per-row weights of the 2M taps, and d
    dy, dx = _offset_arrays(offsets)

    def args_of(i):
        a_ptr, d_ptr = (acc[0, i].data_ptr(), acc[1, i].data_ptr()) if sums else (None, None)
        return (xp.data_ptr(), kq, wts.data_ptr(), out.data_ptr(), _ptr(deg), a_ptr, d_ptr, dy, dx,
                m, k, h, w, r, real(self_weight), scratch[i].data_ptr())  # fmt: skip

    _run(getattr(_library(), f"apply_{suf}"), chunks, args_of)
    return out, deg, acc


def window_apply(x: torch.Tensor, offsets, weights: torch.Tensor, self_weight: float) -> torch.Tensor:
    """:func:`wnet.affinity.window_apply` by the kernel.

    Shape:
        x: (B, K, H, W); weights: (B, M, H, W); returns (B, K, H, W).
    """
    out, _, _ = _apply(x, offsets, weights, self_weight, sums=False)
    return _unpack(out, x.shape[1])


def ncut_terms(probs: torch.Tensor, offsets, weights: torch.Tensor):
    """The soft N-Cut's forward terms in one pass: ``(W S packed, d, A, D)``.

    ``W S`` stays in the kernel's packed layout (B, H, W, Kq) for :func:`ncut_grad`; d = W 1;
    A_k = sum_u S_k(u) (W S_k)(u) and D_k = sum_u S_k(u) d(u) are accumulated in float64.

    Shape:
        probs: (B, K, H, W); weights: (B, M, H, W); returns (B, H, W, Kq), (B, 1, H, W), (B, K), (B, K).
    """
    out, deg, acc = _apply(probs, offsets, weights, 1.0, sums=True)
    total = acc.sum(1)  # (2, B, K): the chunks' partial sums, in a fixed order
    return out, deg, total[0], total[1]


def ncut_grad(ws_packed: torch.Tensor, deg: torch.Tensor, c_ws: torch.Tensor, c_d: torch.Tensor, k: int):
    """``c_ws[b, k] (W S_k)(u) + c_d[b, k] d(u)`` from :func:`ncut_terms`' outputs, as (B, K, H, W)."""
    return _unpack(ws_packed, k, deg.contiguous(), c_ws.to(ws_packed.dtype), c_d.to(ws_packed.dtype))
