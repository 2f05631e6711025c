"""wnet.affinity against the affinity matrix written down directly from its formula."""

import math

import pytest
import torch

import wnet.affinity
from wnet.affinity import pair_weights, window_apply, window_offsets


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


@pytest.mark.parametrize("radius", [1, 1.5, 3, 5])
@pytest.mark.parametrize("channels, sigma_i", [(1, 10.0), (3, 25.0), (3, None)])
@pytest.mark.parametrize("hw", [(7, 9), (11, 6)])
def test_window_apply_matches_dense(radius, channels, sigma_i, hw):
    g = torch.Generator().manual_seed(int(radius * 10) + channels)
    feats = torch.rand(2, channels, *hw, generator=g, dtype=torch.float64) * 255
    x = torch.rand(2, 3, *hw, generator=g, dtype=torch.float64)
    offsets, weights = pair_weights(feats, radius, 4.0, sigma_i)
    assert weights.shape == (2, len(offsets), *hw)
    got = window_apply(x, offsets, weights)  # (B, K, H, W)
    mat = dense_affinity(feats, radius, 4.0, sigma_i)  # (B, N, N)
    want = (mat @ x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape_as(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def operator_matrix(offsets, weights, self_weight=1.0) -> torch.Tensor:
    """The (B, N, N) matrix of x -> window_apply(x) read off by applying it to unit impulses."""
    b, _, h, w = weights.shape
    n = h * w
    eye = torch.eye(n, dtype=weights.dtype).reshape(n, h, w)  # one impulse per "class"
    cols = window_apply(eye.expand(b, n, h, w).contiguous(), offsets, weights, self_weight)
    return cols.flatten(2).transpose(1, 2)  # (B, N, N): [b, u, v] = (W e_v)(u)


@pytest.mark.parametrize("radius", [1.5, 3, 5])
def test_operator_is_symmetric_with_unit_diagonal(radius):
    feats = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 255
    offsets, weights = pair_weights(feats, radius, 4.0, 10.0)
    mat = operator_matrix(offsets, weights)
    torch.testing.assert_close(mat, mat.transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(torch.diagonal(mat, dim1=1, dim2=2), torch.ones(1, 30, dtype=torch.float64))
    assert mat.min() >= 0 and mat.max() <= 1


def test_self_weight_zero_drops_the_diagonal_only():
    feats = torch.rand(2, 1, 5, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 255
    offsets, weights = pair_weights(feats, 3, 2.0, 30.0)
    full = operator_matrix(offsets, weights, 1.0)
    zero = operator_matrix(offsets, weights, 0.0)
    half = operator_matrix(offsets, weights, 0.5)
    assert torch.diagonal(zero, dim1=1, dim2=2).abs().max() == 0
    torch.testing.assert_close(full - zero, torch.eye(20, dtype=torch.float64).expand(2, 20, 20))
    torch.testing.assert_close(half - zero, 0.5 * torch.eye(20, dtype=torch.float64).expand(2, 20, 20))


def test_spatial_only_weights_are_the_gaussian_of_the_offset():
    # sigma_i=None: the CRF smoothness kernel, w = exp(-|o|^2 / sigma_x^2) wherever the pair is inside.
    feats = torch.zeros(1, 1, 4, 4)
    offsets, weights = pair_weights(feats, 2, 3.0, None)
    assert offsets == [(0, 1), (1, -1), (1, 0), (1, 1)]
    for m, (dy, dx) in enumerate(offsets):
        inside = weights[0, m] > 0
        assert int(inside.sum()) == (4 - dy) * (4 - abs(dx))
        assert torch.allclose(weights[0, m][inside], torch.tensor(math.exp(-(dy * dy + dx * dx) / 9.0)))


@pytest.mark.parametrize("hw", [(1, 1), (1, 4), (2, 3), (3, 1)])
def test_image_smaller_than_window(hw):
    # radius 5 reaches past every border: only in-image neighbours may count.
    g = torch.Generator().manual_seed(3)
    feats = torch.rand(1, 3, *hw, generator=g, dtype=torch.float64) * 255
    x = torch.rand(1, 2, *hw, generator=g, dtype=torch.float64)
    offsets, weights = pair_weights(feats, 5, 4.0, 10.0)
    got = window_apply(x, offsets, weights)
    mat = dense_affinity(feats, 5, 4.0, 10.0)
    want = (mat @ x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape_as(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    ones = window_apply(torch.ones(1, 1, *hw, dtype=torch.float64), offsets, weights)
    torch.testing.assert_close(ones.flatten(), mat[0].sum(1))  # d = W 1 (degree) has no padded terms


def test_single_pixel_weights_are_empty():
    offsets, weights = pair_weights(torch.ones(1, 1, 1, 1), 3, 4.0, 10.0)
    assert weights.abs().sum() == 0
    x = torch.tensor([[[[2.5]]]])
    assert window_apply(x, offsets, weights).item() == 2.5


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
    whole = window_apply(x, offsets, weights, 0.5)
    threads = torch.get_num_threads()
    monkeypatch.setattr(wnet.affinity, "_BLOCK_BYTES", block_bytes)
    try:
        torch.set_num_threads(1)
        assert wnet.affinity._class_block(x) == max(1, block_bytes // (42 * 8))  # 42 pixels of 8 bytes
        blocked = window_apply(x, offsets, weights, 0.5)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(blocked, whole, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("df", [7.0, 20.0, 26.0, 1000.0])
def test_underflowing_weights_are_exact_zeros(dtype, df):
    # Two pixels side by side: log w = -(df / sigma_i)^2 - 1 / sigma_x^2 with sigma_i = sigma_x = 1,
    # i.e. -50, -401, -677, -1e6. Weights too small for a normal float of the dtype are exactly 0.
    log_w = -df * df - 1.0
    smallest_normal = torch.finfo(dtype).tiny
    want = math.exp(log_w) if math.exp(log_w) > 2 * smallest_normal else 0.0
    feats = torch.tensor([[[[0.0, df]]]], dtype=dtype)
    _, weights = pair_weights(feats, 1.5, 1.0, 1.0)  # offsets (0, 1), (1, -1), (1, 0), (1, 1)
    assert weights[0, 0, 0, 0].item() == pytest.approx(want, rel=1e-5, abs=0)
    assert weights.abs().sum().item() == weights[0, 0, 0, 0].item()  # the other pairs are outside
    assert (want > 0) == (dtype == torch.float64 and df < 1000 or df == 7.0)
