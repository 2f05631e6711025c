"""wnet.affinity against the affinity matrix written down directly from its formula."""

import math
import warnings

import pytest
import torch

import wnet.affinity
from wnet import cbuild, window_kernel
from wnet.affinity import pair_weights, use_kernel, window_apply, window_offsets

BACKENDS = [
    "eager",
    pytest.param("kernel", marks=pytest.mark.skipif(not window_kernel.available(), reason="no C compiler")),
]


def dense_affinity(feats: torch.Tensor, radius: float, sigma_x: float, sigma_i: float | None) -> torch.Tensor:
    """(B, N, N) matrix w(u, v) with w(u, u) = 1, N = H * W in row-major pixel order."""
    b, c, h, w = feats.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).to(feats.dtype)  # (N, 2)
    dx2 = torch.cdist(pos, pos) ** 2  # (N, N)
    mat = torch.exp(-dx2 / sigma_x**2) * (dx2 < radius**2)
    mat = mat.expand(b, -1, -1)
    if sigma_i is not None:
        f = feats.flatten(2).transpose(1, 2)  # (B, N, C)
        fi2 = ((f[:, :, None, :] - f[:, None, :, :]) ** 2).sum(-1)  # (B, N, N)
        mat = mat * torch.exp(-fi2 / sigma_i**2)
    return mat


@pytest.mark.parametrize(
    "radius, expected",
    [(1, 0), (1.5, 4), (2, 4), (2.5, 10), (5, 34)],  # half of the non-zero lattice points in the open disc
)
def test_window_offsets_count(radius, expected):
    offsets = window_offsets(radius)
    assert len(offsets) == expected
    assert len(set(offsets)) == expected
    for dy, dx in offsets:
        assert 0 < dy * dy + dx * dx < radius * radius
        assert (-dy, -dx) not in offsets  # one of each +/- pair


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("radius", [1, 1.5, 3, 5, 7])
@pytest.mark.parametrize("channels, sigma_i", [(1, 10.0), (3, 25.0), (3, None)])
@pytest.mark.parametrize("hw", [(7, 9), (11, 6)])
def test_window_apply_matches_dense(radius, channels, sigma_i, hw, backend):
    g = torch.Generator().manual_seed(int(radius * 10) + channels)
    feats = torch.rand(2, channels, *hw, generator=g, dtype=torch.float64) * 255
    x = torch.rand(2, 3, *hw, generator=g, dtype=torch.float64)
    offsets, weights = pair_weights(feats, radius, 4.0, sigma_i, backend=backend)
    assert weights.shape == (2, len(offsets), *hw)
    got = window_apply(x, offsets, weights, backend=backend)  # (B, K, H, W)
    mat = dense_affinity(feats, radius, 4.0, sigma_i)  # (B, N, N)
    want = (mat @ x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape_as(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def operator_matrix(offsets, weights, self_weight=1.0, backend="auto") -> torch.Tensor:
    """The (B, N, N) matrix of x -> window_apply(x) read off by applying it to unit impulses."""
    b, _, h, w = weights.shape
    n = h * w
    eye = torch.eye(n, dtype=weights.dtype).reshape(n, h, w)  # one impulse per "class"
    cols = window_apply(eye.expand(b, n, h, w).contiguous(), offsets, weights, self_weight, backend)
    return cols.flatten(2).transpose(1, 2)  # (B, N, N): [b, u, v] = (W e_v)(u)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("radius", [1.5, 3, 5])
def test_operator_is_symmetric_with_unit_diagonal(radius, backend):
    feats = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 255
    offsets, weights = pair_weights(feats, radius, 4.0, 10.0, backend=backend)
    mat = operator_matrix(offsets, weights, backend=backend)
    torch.testing.assert_close(mat, mat.transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(torch.diagonal(mat, dim1=1, dim2=2), torch.ones(1, 30, dtype=torch.float64))
    assert mat.min() >= 0 and mat.max() <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_self_weight_zero_drops_the_diagonal_only(backend):
    feats = torch.rand(2, 1, 5, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 255
    offsets, weights = pair_weights(feats, 3, 2.0, 30.0, backend=backend)
    full = operator_matrix(offsets, weights, 1.0, backend)
    zero = operator_matrix(offsets, weights, 0.0, backend)
    half = operator_matrix(offsets, weights, 0.5, backend)
    assert torch.diagonal(zero, dim1=1, dim2=2).abs().max() == 0
    torch.testing.assert_close(full - zero, torch.eye(20, dtype=torch.float64).expand(2, 20, 20))
    torch.testing.assert_close(half - zero, 0.5 * torch.eye(20, dtype=torch.float64).expand(2, 20, 20))


@pytest.mark.parametrize("backend", BACKENDS)
def test_spatial_only_weights_are_the_gaussian_of_the_offset(backend):
    # sigma_i=None: the CRF smoothness kernel, w = exp(-|o|^2 / sigma_x^2) wherever the pair is inside.
    feats = torch.zeros(1, 1, 4, 4)
    offsets, weights = pair_weights(feats, 2, 3.0, None, backend=backend)
    assert offsets == [(0, 1), (1, -1), (1, 0), (1, 1)]
    for m, (dy, dx) in enumerate(offsets):
        inside = weights[0, m] > 0
        assert int(inside.sum()) == (4 - dy) * (4 - abs(dx))
        assert torch.allclose(weights[0, m][inside], torch.tensor(math.exp(-(dy * dy + dx * dx) / 9.0)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hw", [(1, 1), (1, 4), (2, 3), (3, 1)])
def test_image_smaller_than_window(hw, backend):
    # radius 5 reaches past every border: only in-image neighbours may count.
    g = torch.Generator().manual_seed(3)
    feats = torch.rand(1, 3, *hw, generator=g, dtype=torch.float64) * 255
    x = torch.rand(1, 2, *hw, generator=g, dtype=torch.float64)
    offsets, weights = pair_weights(feats, 5, 4.0, 10.0, backend=backend)
    got = window_apply(x, offsets, weights, backend=backend)
    mat = dense_affinity(feats, 5, 4.0, 10.0)
    want = (mat @ x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape_as(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    ones = window_apply(torch.ones(1, 1, *hw, dtype=torch.float64), offsets, weights, backend=backend)
    torch.testing.assert_close(ones.flatten(), mat[0].sum(1))  # d = W 1 (degree) has no padded terms


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_pixel_weights_are_empty(backend):
    offsets, weights = pair_weights(torch.ones(1, 1, 1, 1), 3, 4.0, 10.0, backend=backend)
    assert weights.abs().sum() == 0
    x = torch.tensor([[[[2.5]]]])
    assert window_apply(x, offsets, weights, backend=backend).item() == 2.5


def test_window_apply_shape_mismatch_raises():
    offsets, weights = pair_weights(torch.rand(2, 1, 5, 5), 2, 4.0, 10.0)
    with pytest.raises(ValueError, match="batch and spatial sizes"):
        window_apply(torch.rand(2, 3, 5, 6), offsets, weights)
    with pytest.raises(ValueError, match="batch and spatial sizes"):
        window_apply(torch.rand(1, 3, 5, 5), offsets, weights)


@pytest.mark.parametrize("block_bytes", [1, 7 * 6 * 8 * 2])  # one class / three classes per block
def test_class_blocks_give_the_same_result(monkeypatch, block_bytes):
    # On one CPU thread window_apply filters a few classes at a time; the result must not change.
    g = torch.Generator().manual_seed(4)
    feats = torch.rand(1, 3, 7, 6, generator=g, dtype=torch.float64) * 255
    x = torch.rand(1, 5, 7, 6, generator=g, dtype=torch.float64)
    offsets, weights = pair_weights(feats, 3, 4.0, 10.0)
    whole = window_apply(x, offsets, weights, 0.5, backend="eager")
    threads = torch.get_num_threads()
    monkeypatch.setattr(wnet.affinity, "_BLOCK_BYTES", block_bytes)
    try:
        torch.set_num_threads(1)
        assert wnet.affinity._class_block(x) == max(1, block_bytes // (42 * 8))  # 42 pixels of 8 bytes
        blocked = window_apply(x, offsets, weights, 0.5, backend="eager")
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(blocked, whole, rtol=1e-15, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("df", [7.0, 20.0, 26.0, 1000.0])
def test_underflowing_weights_are_exact_zeros(dtype, df, backend):
    # Two pixels side by side: log w = -(df / sigma_i)^2 - 1 / sigma_x^2 with sigma_i = sigma_x = 1,
    # i.e. -50, -401, -677, -1e6. Weights too small for a normal float of the dtype are exactly 0.
    log_w = -df * df - 1.0
    smallest_normal = torch.finfo(dtype).tiny
    want = math.exp(log_w) if math.exp(log_w) > 2 * smallest_normal else 0.0
    feats = torch.tensor([[[[0.0, df]]]], dtype=dtype)
    _, weights = pair_weights(
        feats, 1.5, 1.0, 1.0, backend=backend
    )  # offsets (0, 1), (1, -1), (1, 0), (1, 1)
    assert weights[0, 0, 0, 0].item() == pytest.approx(want, rel=1e-5, abs=0)
    assert weights.abs().sum().item() == weights[0, 0, 0, 0].item()  # the other pairs are outside
    assert (want > 0) == (dtype == torch.float64 and df < 1000 or df == 7.0)


# ------------------------------------------------------------------ the compiled kernel and its fallback

needs_kernel = pytest.mark.skipif(
    not window_kernel.available(), reason="no C compiler for wnet.window_kernel"
)


@needs_kernel
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 2e-6), (torch.float64, 1e-13)])
@pytest.mark.parametrize("shape, radius", [((2, 11, 23, 17), 5), ((3, 16, 9, 33), 2.5), ((1, 40, 12, 8), 7)])
def test_kernel_equals_eager(shape, radius, dtype, tol, threads):
    # Odd class counts and widths exercise the kernel's partial vectors; 3 threads split rows
    # across image boundaries. Weights and W x agree to rounding (relative to w(u, u) = 1).
    g = torch.Generator().manual_seed(5)
    b, k, h, w = shape
    feats = (torch.rand(b, 3, h, w, generator=g) * 255).to(dtype)
    x = torch.rand(b, k, h, w, generator=g).to(dtype)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        offsets, w_kernel = pair_weights(feats, radius, 4.0, 10.0, backend="kernel")
        out_kernel = window_apply(x, offsets, w_kernel, 0.7, backend="kernel")
    finally:
        torch.set_num_threads(before)
    _, w_eager = pair_weights(feats, radius, 4.0, 10.0, backend="eager")
    torch.testing.assert_close(w_kernel, w_eager, rtol=0, atol=tol)
    out_eager = window_apply(x, offsets, w_eager, 0.7, backend="eager")
    torch.testing.assert_close(out_kernel, out_eager, rtol=tol, atol=tol)


@needs_kernel
def test_kernel_agrees_on_non_contiguous_inputs():
    g = torch.Generator().manual_seed(6)
    feats = torch.rand(2, 3, 10, 12, generator=g) * 255
    x = torch.rand(2, 5, 10, 12, generator=g)
    offsets, weights = pair_weights(feats, 3, 4.0, 10.0, backend="kernel")
    want = window_apply(x, offsets, weights, backend="kernel")
    w_cl = weights.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # same values, other strides
    assert not w_cl.is_contiguous()
    got = window_apply(x.to(memory_format=torch.channels_last), offsets, w_cl, backend="kernel")
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_auto_uses_eager_where_the_kernel_does_not_apply():
    x = torch.rand(1, 2, 5, 5, requires_grad=True)
    feats = torch.rand(1, 3, 5, 5)
    assert not use_kernel("auto", x)  # needs an autograd graph
    assert not use_kernel("auto", x.detach().half())  # dtype
    assert not use_kernel("eager", feats)
    offsets, weights = pair_weights(feats, 2, 4.0, 10.0)
    window_apply(x, offsets, weights).sum().backward()  # eager, so differentiable
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="backend must be one of"):
        window_apply(x.detach(), offsets, weights, backend="fast")
    with pytest.raises(ValueError, match="backend='kernel' needs CPU float32/float64"):
        window_apply(x, offsets, weights, backend="kernel")


@pytest.mark.parametrize("env, cc", [({"WNET_WINDOW_KERNEL": "0"}, None), ({}, "/nonexistent/cc")])
def test_without_the_kernel_auto_falls_back_to_eager(monkeypatch, env, cc):
    # Disabled, or a compiler that cannot run: 'auto' gives the eager numbers, 'kernel' says why.
    g = torch.Generator().manual_seed(7)
    feats = torch.rand(1, 3, 6, 7, generator=g, dtype=torch.float64) * 255
    x = torch.rand(1, 3, 6, 7, generator=g, dtype=torch.float64)
    offsets, weights = pair_weights(feats, 3, 4.0, 10.0, backend="eager")
    want = window_apply(x, offsets, weights, backend="eager")
    monkeypatch.setattr(window_kernel, "_state", {})  # forget the library built so far
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if cc:
        monkeypatch.setenv("CC", cc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not window_kernel.available()
    assert len(caught) == (1 if cc else 0)  # a failed build warns once; disabling on purpose does not
    assert ("disabled" in window_kernel.unavailable_reason()) == (cc is None)
    torch.testing.assert_close(window_apply(x, offsets, weights), want, rtol=0, atol=0)
    assert torch.equal(pair_weights(feats, 3, 4.0, 10.0)[1], weights)
    with pytest.raises(RuntimeError, match="compiled kernel unavailable"):
        window_apply(x, offsets, weights, backend="kernel")


@needs_kernel
def test_built_kernel_is_cached_per_source_and_cpu(monkeypatch, tmp_path):
    # The first build is kept under $WNET_CACHE_DIR; the next process (here: a cleared state)
    # loads it without compiling. An empty $WNET_CACHE_DIR turns the cache off.
    monkeypatch.setenv("WNET_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(window_kernel, "_state", {})
    assert window_kernel.available()
    (cached,) = tmp_path.glob("window_kernel-*.so")
    monkeypatch.setattr(window_kernel, "_state", {})

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled although a cached library exists")

    monkeypatch.setattr(cbuild, "_compile", no_compiler)
    assert window_kernel.available()
    src = window_kernel._SOURCE
    monkeypatch.setenv("WNET_CACHE_DIR", "")
    assert cbuild.cache_path(src, "cc", cbuild.FLAGS) is None
    monkeypatch.setenv("WNET_CACHE_DIR", str(tmp_path))
    key = cbuild.cache_path(src, "cc", cbuild.FLAGS)
    assert key != cbuild.cache_path(src, "/other/cc", cbuild.FLAGS)  # compiler in the key
    assert key != cbuild.cache_path(src, "cc", [*cbuild.FLAGS, "-O0"])  # flags in the key


@needs_kernel
@pytest.mark.parametrize("dtype, lowest", [(torch.float32, -85.5), (torch.float64, -705.0)])
def test_kernel_exp_is_within_one_ulp(dtype, lowest):
    # One pair per image with w = exp(-df^2) (sigma_i = 1, sigma_x -> inf), across the whole range
    # of exponents that give a stored (normal) weight; compared with exp of the same rounded df^2.
    e = torch.linspace(lowest, -1e-3, 5000, dtype=torch.float64)
    df = (-e).sqrt().to(dtype)
    feats = torch.zeros(len(e), 1, 1, 2, dtype=dtype)
    feats[:, 0, 0, 1] = df
    w = window_kernel.pair_weights(feats, [(0, 1)], 1e30, 1.0)[:, 0, 0, 0].double()
    want = (-(df * df).double()).exp()
    assert ((w - want).abs() / (want * torch.finfo(dtype).eps)).max() <= 1.0
