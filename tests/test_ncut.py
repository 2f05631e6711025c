"""The exact soft N-Cut loss against a dense N x N reference built straight from the formula."""

import pytest
import torch

from wnet import window_kernel
from wnet.ncut import SoftNCutLoss, ncut_features, soft_ncut_loss

needs_kernel = pytest.mark.skipif(
    not window_kernel.available(), reason="no C compiler for wnet.window_kernel"
)
BACKENDS = ["eager", pytest.param("kernel", marks=needs_kernel)]


def dense_soft_ncut(probs, feats, radius, sigma_x, sigma_i):
    """K - sum_k A_k / D_k with the full (B, N, N) affinity matrix, averaged over the batch."""
    b, k, h, w = probs.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).to(probs.dtype)  # (N, 2)
    dx2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)  # (N, N)
    f = feats.flatten(2).transpose(1, 2).to(probs.dtype)  # (B, N, C)
    fi2 = ((f[:, :, None, :] - f[:, None, :, :]) ** 2).sum(-1)  # (B, N, N)
    mat = torch.exp(-fi2 / sigma_i**2) * torch.exp(-dx2 / sigma_x**2) * (dx2 < radius**2)  # (B, N, N)
    s = probs.flatten(2)  # (B, K, N)
    a = (s * (s @ mat)).sum(-1)  # (B, K); mat is symmetric
    d = mat.sum(-1)  # (B, N)
    den = (s * d[:, None, :]).sum(-1)  # (B, K)
    return (k - (a / den).sum(1)).mean()


def random_probs(b, k, h, w, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, h, w, generator=g, dtype=dtype).mul(2).softmax(1)


def random_image(b, c, h, w, seed, dtype=torch.float64):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 255


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("radius", [1, 1.5, 3, 5, 7])
@pytest.mark.parametrize("sigmas", [(4.0, 10.0), (2.0, 60.0)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("hw", [(7, 9), (11, 6)])
def test_matches_dense_value_and_gradient(radius, sigmas, channels, hw, backend):
    sigma_x, sigma_i = sigmas
    seed = int(radius * 10) + channels + hw[0]
    probs = random_probs(2, 3, *hw, seed).requires_grad_()
    feats = random_image(2, channels, *hw, seed + 1)
    ours = soft_ncut_loss(probs, feats, radius, sigma_x, sigma_i, backend=backend)
    (g_ours,) = torch.autograd.grad(ours, probs)
    ref = dense_soft_ncut(probs, feats, radius, sigma_x, sigma_i)
    (g_ref,) = torch.autograd.grad(ref, probs)
    assert ours.dtype == torch.float64 and ours.shape == ()
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_tiny(backend):
    probs = random_probs(2, 2, 4, 5, seed=7).requires_grad_()
    feats = random_image(2, 3, 4, 5, seed=8)
    assert torch.autograd.gradcheck(lambda p: soft_ncut_loss(p, feats, 2.5, 3.0, 80.0, backend), (probs,))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gap", [30.0, 60.0, 80.0])
def test_vanishing_class_keeps_a_finite_exact_gradient(backend, gap):
    """A class whose float32 probabilities sit ~1e-26 (gap 60) or ~1e-35 (gap 80) used to give
    A_k / D_k^2 = 0 / 0 = NaN in the backward (what stopped a 2400-step BSDS run at step 1912).
    Its gradient does not depend on the scale of S_k, so it must equal the float64 one; the
    other classes' gradients are the unchanged float32 ones."""
    logits = torch.randn(2, 4, 9, 11, generator=torch.Generator().manual_seed(3))
    logits[:, 3] -= gap  # class 3: every pixel's probability ~exp(-gap)
    probs32 = logits.softmax(1).requires_grad_()
    probs64 = probs32.detach().double().requires_grad_()  # the same values, in float64
    feats = random_image(2, 3, 9, 11, seed=4)
    soft_ncut_loss(probs32, feats.float(), 3.0, 4.0, 10.0, backend).backward()
    soft_ncut_loss(probs64, feats, 3.0, 4.0, 10.0, backend).backward()
    assert torch.isfinite(probs32.grad).all()
    torch.testing.assert_close(probs32.grad.double(), probs64.grad, rtol=1e-4, atol=1e-9)
    assert probs32.grad[:, 3].abs().max() > 1e-4  # not zeroed: as large as the live classes'


@needs_kernel
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(2, 10, 37, 29), (3, 33, 16, 20), (1, 64, 24, 24)])
def test_kernel_equals_eager_on_larger_maps(shape, dtype, rtol, threads):
    # The fused kernel against the eager path at sizes with partial vectors, several images and,
    # with 2 threads, rows split between threads; float32 within float32 rounding.
    b, k, h, w = shape
    probs = random_probs(b, k, h, w, seed=k, dtype=dtype)
    feats = random_image(b, 3, h, w, seed=k + 1, dtype=dtype)
    p_eager, p_kernel = probs.clone().requires_grad_(), probs.clone().requires_grad_()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        l_kernel = soft_ncut_loss(p_kernel, feats, backend="kernel")
        l_kernel.backward()
    finally:
        torch.set_num_threads(before)
    l_eager = soft_ncut_loss(p_eager, feats, backend="eager")
    l_eager.backward()
    torch.testing.assert_close(l_kernel, l_eager, rtol=rtol, atol=0)
    scale = p_eager.grad.abs().max()
    torch.testing.assert_close(p_kernel.grad / scale, p_eager.grad / scale, rtol=0, atol=rtol)


def test_uniform_and_single_class_maps_give_k_minus_one():
    # Uniform S: A_k / D_k = 1/K for every W. One class everywhere: that class gives 1, the
    # empty ones have D_k = 0 and must count as 0 (the guard), not NaN.
    feats = random_image(2, 3, 6, 7, seed=0)
    uniform = torch.full((2, 4, 6, 7), 0.25, dtype=torch.float64)
    assert soft_ncut_loss(uniform, feats).item() == pytest.approx(3.0, rel=1e-12)
    single = torch.zeros(2, 4, 6, 7, dtype=torch.float64)
    single[:, 2] = 1
    single.requires_grad_()
    loss = soft_ncut_loss(single, feats)
    assert loss.item() == pytest.approx(3.0, rel=1e-12)
    loss.backward()
    assert torch.isfinite(single.grad).all()


def test_hard_labels_with_radius_one_count_empty_classes():
    # r = 1: W = I, so A_k = D_k = |region k| and J = K - (number of non-empty classes).
    labels = torch.tensor([[[0, 0, 1], [0, 1, 1], [3, 3, 3]]])  # class 2 of 5 is unused, as is 4
    probs = torch.nn.functional.one_hot(labels, 5).permute(0, 3, 1, 2).double()
    feats = random_image(1, 1, 3, 3, seed=1)
    assert soft_ncut_loss(probs, feats, radius=1).item() == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_loss_within_zero_and_k(seed):
    k = 2 + seed
    probs = random_probs(3, k, 8, 10, seed)
    feats = random_image(3, 3, 8, 10, seed + 100)
    j = soft_ncut_loss(probs, feats).item()
    assert 0.0 <= j <= k
    hard = torch.nn.functional.one_hot(probs.argmax(1), k).permute(0, 3, 1, 2).double()
    assert 0.0 <= soft_ncut_loss(hard, feats).item() <= k


def test_segmentation_aligned_with_regions_scores_lower_than_random():
    g = torch.Generator().manual_seed(0)
    h, w = 16, 16
    image = torch.full((1, 1, h, w), 40.0)
    image[..., w // 2 :] = 200.0  # two flat regions, a vertical edge in the middle
    image = image + torch.randn(1, 1, h, w, generator=g)  # mild noise (sigma 1 on 0-255)
    aligned = torch.zeros(1, 2, h, w)
    aligned[:, 0, :, : w // 2] = 1
    aligned[:, 1, :, w // 2 :] = 1
    rand = torch.randn(1, 2, h, w, generator=g).mul(3).softmax(1)
    across = torch.zeros(1, 2, h, w)  # same region sizes, cut across the edge instead
    across[:, 0, : h // 2] = 1
    across[:, 1, h // 2 :] = 1
    j_aligned = soft_ncut_loss(aligned, image).item()
    assert j_aligned < 1e-3  # no affinity crosses an edge of height 160 with sigma_i = 10
    assert j_aligned < soft_ncut_loss(rand, image).item() - 0.3
    assert j_aligned < soft_ncut_loss(across, image).item() - 0.05


def test_module_matches_function_and_image_gets_no_gradient():
    probs = random_probs(2, 3, 5, 6, seed=3, dtype=torch.float32).requires_grad_()
    image = random_image(2, 3, 5, 6, seed=4, dtype=torch.float32).requires_grad_()
    module = SoftNCutLoss(radius=3, sigma_x=2.0, sigma_i=20.0)
    loss = module(probs, image)
    assert loss.dtype == torch.float32
    assert loss.item() == soft_ncut_loss(probs, image, 3, 2.0, 20.0).item()
    loss.backward()
    assert probs.grad is not None and image.grad is None
    assert "radius=3.0" in repr(module) and "backend='auto'" in repr(module)
    eager = SoftNCutLoss(radius=3, sigma_x=2.0, sigma_i=20.0, backend="eager")
    assert eager(probs, image).item() == soft_ncut_loss(probs, image, 3, 2.0, 20.0, "eager").item()


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_probs_give_the_same_loss_and_gradient(backend):
    probs = random_probs(2, 3, 6, 7, seed=11)
    feats = random_image(2, 3, 6, 7, seed=12)
    p1 = probs.clone().requires_grad_()
    p2 = probs.to(memory_format=torch.channels_last).requires_grad_()
    l1, l2 = soft_ncut_loss(p1, feats, 3, backend=backend), soft_ncut_loss(p2, feats, 3, backend=backend)
    (l1 + l2).backward()
    torch.testing.assert_close(l1, l2, rtol=1e-12, atol=0)
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-12, atol=1e-15)


def test_low_precision_inputs_compute_in_float32():
    probs = random_probs(2, 4, 9, 8, seed=5)
    image = random_image(2, 3, 9, 8, seed=6)
    ref = soft_ncut_loss(probs, image).item()
    bf = soft_ncut_loss(probs.bfloat16(), image.bfloat16())
    assert bf.dtype == torch.float32
    assert bf.item() == pytest.approx(ref, rel=2e-2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = soft_ncut_loss(probs.float(), image.float())
    assert auto.dtype == torch.float32
    assert auto.item() == pytest.approx(ref, rel=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_autocast_matches_cpu():
    probs = random_probs(2, 4, 12, 10, seed=9, dtype=torch.float32)
    image = random_image(2, 3, 12, 10, seed=10, dtype=torch.float32)
    ref = soft_ncut_loss(probs, image).item()
    p = probs.cuda().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = soft_ncut_loss(p, image.cuda())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref, rel=1e-5)
    loss.backward()
    assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
    with pytest.raises(ValueError, match="backend='kernel' needs CPU"):
        soft_ncut_loss(p, image.cuda(), backend="kernel")  # the compiled kernel is CPU-only


@pytest.mark.parametrize(
    "probs_shape, image_shape, kwargs, match",
    [
        ((2, 3, 5, 5), (1, 3, 5, 5), {}, "batch size"),
        ((2, 3, 5, 5), (2, 3, 5, 6), {}, "spatial size"),
        ((3, 5, 5), (1, 3, 5, 5), {}, r"probs must be \(B, K, H, W\)"),
        ((1, 3, 5, 5), (3, 5, 5), {}, r"image must be \(B, C, H, W\)"),
        ((1, 3, 5, 5), (1, 3, 5, 5), {"radius": 0.5}, "radius must be >= 1"),
        ((1, 3, 5, 5), (1, 3, 5, 5), {"sigma_i": 0.0}, "sigma_x and sigma_i must be > 0"),
    ],
)
def test_bad_shapes_and_arguments_raise(probs_shape, image_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        soft_ncut_loss(torch.rand(probs_shape), torch.rand(image_shape), **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_inputs_raise(backend):
    probs, image = torch.rand(1, 2, 4, 4), torch.rand(1, 3, 4, 4)
    bad = probs.clone()
    bad[0, 1, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="probs contain NaN or Inf"):
        soft_ncut_loss(bad, image, backend=backend)
    for value in (float("inf"), float("nan")):
        bad = image.clone()
        bad[0, 0, 0, 0] = value
        with pytest.raises(ValueError, match="image contains NaN or Inf"):
            soft_ncut_loss(probs, bad, backend=backend)
    with pytest.raises(ValueError, match="radius must be >= 1"):
        SoftNCutLoss(radius=0)
    with pytest.raises(ValueError, match="overflowed torch.float32"):
        soft_ncut_loss(probs * 1e30, image, backend=backend)  # finite, but S^2 is not
    with pytest.raises(ValueError, match="backend must be one of"):
        soft_ncut_loss(probs, image, backend="fast")


def test_ncut_features_scales_and_greys():
    image = torch.zeros(1, 3, 1, 3)
    image[0, 0, 0, 0] = 1.0  # red
    image[0, 1, 0, 1] = 1.0  # green
    image[0, :, 0, 2] = 0.5  # mid grey
    rgb = ncut_features(image, "rgb")
    assert rgb.shape == (1, 3, 1, 3)
    torch.testing.assert_close(rgb, image * 255)
    grey = ncut_features(image, "grey")
    assert grey.shape == (1, 1, 1, 3)
    torch.testing.assert_close(grey.flatten(), torch.tensor([0.299 * 255, 0.587 * 255, 127.5]))
    torch.testing.assert_close(ncut_features(image[:, :1], "grey"), image[:, :1] * 255)


@pytest.mark.parametrize(
    "shape, scale, mode, match",
    [
        ((1, 3, 4, 4), 255.0, "rgb", r"in \[0, 1\]"),
        ((1, 1, 4, 4), 1.0, "rgb", "needs 3 channels"),
        ((1, 2, 4, 4), 1.0, "grey", "needs 1 or 3 channels"),
        ((1, 3, 4, 4), 1.0, "hsv", "mode must be"),
        ((3, 4, 4), 1.0, "rgb", r"\(B, C, H, W\)"),
    ],
)
def test_ncut_features_raises(shape, scale, mode, match):
    with pytest.raises(ValueError, match=match):
        ncut_features(torch.rand(shape) * scale, mode)
