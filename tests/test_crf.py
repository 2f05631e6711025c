"""wnet.postprocess.crf: input handling, refinement of a noisy two-region map, and the shared affinity code."""

import math

import numpy as np
import pytest
import torch
from helpers import load_script

import wnet.affinity
import wnet.postprocess.crf
import wnet.window_kernel
from wnet.affinity import pair_weights, window_apply
from wnet.postprocess.crf import (
    CRFParams,
    as_image_tensor,
    as_uint8_image,
    crf_messages,
    crf_weights,
    dense_crf,
    dense_crf_batch,
    refine,
    torch_crf,
)


def two_region_case(h=24, w=32, noise=1.2, seed=0):
    """Left half dark, right half bright; soft maps = softmax(true one-hot * 1 + Gaussian noise)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), np.int64)
    truth[:, w // 2 :] = 1
    image = np.where(truth[..., None] == 1, 200, 40).astype(np.uint8).repeat(3, axis=2)  # (H, W, 3)
    logits = np.stack([truth == 0, truth == 1]).astype(np.float32) + rng.normal(0, noise, (2, h, w))
    probs = np.exp(logits) / np.exp(logits).sum(0, keepdims=True)  # (2, H, W)
    return probs.astype(np.float32), image, truth


# ------------------------------------------------------------------------ image handling


@pytest.mark.parametrize(
    "image",
    [
        np.full((4, 5), 0.5),  # grey float64 HxW
        np.full((4, 5, 1), 0.5, np.float32),  # grey HxWx1
        np.full((4, 5, 3), 128, np.uint8),  # RGB uint8
        torch.full((1, 4, 5), 0.5),  # torch grey CxHxW
        torch.full((3, 4, 5), 128, dtype=torch.uint8),  # torch RGB CxHxW
        np.full((5, 4, 3), 0.5).transpose(1, 0, 2),  # non-contiguous HxWx3 float64
    ],
)
def test_as_uint8_image_layouts(image):
    out = as_uint8_image(image, (4, 5))
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert (out == 128).all()  # 0.5 * 255 = 127.5 rounds to 128


def test_as_uint8_image_values_and_grey_replication():
    grey = np.array([[0.0, 1.0], [0.2, 0.6]])
    out = as_uint8_image(grey)
    assert out[..., 0].tolist() == [[0, 255], [51, 153]]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


@pytest.mark.parametrize(
    "image, match",
    [
        (np.full((4, 5, 3), 2.0), r"\[0, 1\]"),  # float image on the 0-255 scale
        (np.zeros((4, 5, 2)), "got"),  # two channels
        (np.zeros((3, 4, 5)), r"\(H, W, 3\)"),  # channels-first numpy
        (np.zeros((4, 6, 3), np.uint8), "size"),  # wrong size
    ],
)
def test_as_uint8_image_rejects(image, match):
    with pytest.raises(ValueError, match=match):
        as_uint8_image(image, (4, 5))


def test_as_image_tensor_scales_and_replicates():
    x = as_image_tensor(torch.tensor([[[[0.0, 1.0]]]]))  # (1, 1, 1, 2) in [0, 1]
    assert x.shape == (1, 3, 1, 2) and x[0, :, 0, 1].tolist() == [255.0] * 3
    assert as_image_tensor(torch.full((1, 3, 2, 2), 7, dtype=torch.uint8)).max().item() == 7.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_image_tensor(torch.full((1, 3, 2, 2), 9.0))


# ------------------------------------------------------------------------ dense CRF


def test_dense_crf_accepts_float64_non_contiguous_and_grey():
    probs, image, _ = two_region_case()
    probs64 = np.ascontiguousarray(probs[:, :, ::-1]).astype(np.float64)[:, :, ::-1]  # non-contiguous
    grey = image[..., 0].astype(np.float64) / 255.0  # HxW float64
    out = dense_crf(probs64, grey, CRFParams())
    ref = dense_crf(probs, image, CRFParams())
    assert out.shape == probs.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-4)
    np.testing.assert_allclose(out, ref, atol=1e-5)  # grey replicated = the RGB image


def test_dense_crf_rejects_bad_probs():
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        dense_crf(np.ones((4, 5)), np.zeros((4, 5)), CRFParams())
    with pytest.raises(ValueError, match="soft maps have"):
        dense_crf(np.full((2, 4, 5), 0.5), np.zeros((5, 4)), CRFParams())


def test_dense_crf_batch_order_matches_loop():
    cases = [two_region_case(h=16 + 2 * i, seed=i) for i in range(3)]
    probs, images = [c[0] for c in cases], [c[1] for c in cases]
    pooled = dense_crf_batch(probs, images, CRFParams(), workers=2)
    loop = [dense_crf(p, im, CRFParams()) for p, im in zip(probs, images, strict=True)]
    assert [p.shape for p in pooled] == [p.shape for p in probs]
    for a, b in zip(pooled, loop, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["dense", "torch"])
def test_crf_improves_noisy_two_region_map(kind):
    probs, image, truth = two_region_case()
    before = (probs.argmax(0) == truth).mean()
    out = refine(probs, image, CRFParams(kind=kind))
    after = (out.argmax(0) == truth).mean()
    assert isinstance(out, np.ndarray) and out.shape == probs.shape
    assert before < 0.85  # the noise flips a good share of pixels
    assert after > 0.97 and after > before + 0.1


@pytest.mark.parametrize("kind", ["dense", "torch"])
def test_refine_accepts_non_contiguous_float64_and_torch_grey_image(kind):
    probs, image, _ = two_region_case()
    flipped = probs.astype(np.float64)[:, :, ::-1]  # negative strides
    grey = torch.from_numpy(image[:, ::-1, :1].copy()).permute(2, 0, 1)  # (1, H, W) uint8
    out = refine(flipped, grey, CRFParams(kind=kind))
    ref = refine(np.ascontiguousarray(probs[:, :, ::-1]), image[:, ::-1], CRFParams(kind=kind))
    assert out.shape == probs.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_refine_none_and_unknown_kind():
    probs, image, _ = two_region_case()
    assert refine(probs, image, CRFParams(kind="none")) is probs
    with pytest.raises(ValueError, match="kind"):
        refine(probs, image, CRFParams(kind="crfasrnn"))


def test_refine_torch_batch_keeps_type_and_matches_torch_crf():
    probs, image, _ = two_region_case()
    p = torch.from_numpy(np.stack([probs, probs[:, ::-1].copy()])).double()  # (2, K, H, W) float64
    ims = torch.from_numpy(np.stack([image, image[::-1].copy()])).permute(0, 3, 1, 2)  # (2, 3, H, W) uint8
    out = refine(p, ims, CRFParams(kind="torch"))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == p.shape
    torch.testing.assert_close(out.float(), torch_crf(p.float(), ims, CRFParams(kind="torch")))


# ------------------------------------------------------------------------ torch CRF and shared affinity


def test_crf_weights_are_pair_weights_with_sqrt2_theta():
    cfg = CRFParams(sxy_gaussian=2.0, sxy_bilateral=5.0, srgb_bilateral=30.0, radius=3.0)
    img = torch.rand(2, 3, 6, 7)
    offsets, weights = crf_weights(img, cfg, normalize=False)
    off_g, k_g = pair_weights(img * 255, 3.0, math.sqrt(2) * 2.0, None)
    off_b, k_b = pair_weights(img * 255, 3.0, math.sqrt(2) * 5.0, math.sqrt(2) * 30.0)
    assert offsets == off_g == off_b
    torch.testing.assert_close(weights, cfg.compat_gaussian * k_g + cfg.compat_bilateral * k_b)
    # exp(-d^2 / (2 theta^2)) at the offset (0, 1) of pixel (0, 0), smoothness kernel alone
    m = offsets.index((0, 1))
    assert k_g[0, m, 0, 0].item() == pytest.approx(math.exp(-1 / (2 * 2.0**2)))


def test_crf_message_step_is_window_apply_without_self():
    cfg = CRFParams(radius=2.5)
    img, q = torch.rand(1, 3, 5, 6), torch.softmax(torch.randn(1, 4, 5, 6), 1)
    offsets, weights = crf_weights(img, cfg)
    msg = crf_messages(q, offsets, weights)
    torch.testing.assert_close(msg, window_apply(q, offsets, weights, self_weight=0.0))
    torch.testing.assert_close(msg, window_apply(q, offsets, weights) - q)


def test_normalised_weights_against_brute_force():
    """w'(u, v) = w(u, v) / sqrt(d_u d_v), d_u = 1 + sum_v w(u, v), written out pixel by pixel."""
    cfg = CRFParams(compat_gaussian=1.0, compat_bilateral=0.0, sxy_gaussian=1.5, radius=2.0)
    h, w = 3, 4
    offsets, weights = crf_weights(torch.zeros(1, 3, h, w), cfg)
    raw = lambda dy, dx: math.exp(-(dy * dy + dx * dx) / (2 * 1.5**2))  # noqa: E731
    d = np.ones((h, w))
    for y in range(h):
        for x in range(w):
            for yy in range(h):
                for xx in range(w):
                    if (y, x) != (yy, xx) and (y - yy) ** 2 + (x - xx) ** 2 < 4:
                        d[y, x] += raw(yy - y, xx - x)
    for m, (dy, dx) in enumerate(offsets):
        for y in range(h):
            for x in range(w):
                inside = 0 <= y + dy < h and 0 <= x + dx < w
                want = raw(dy, dx) / math.sqrt(d[y, x] * d[y + dy, x + dx]) if inside else 0.0
                assert weights[0, m, y, x].item() == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_ncut_and_crf_share_pair_weights(monkeypatch):
    """Both users hold wnet.affinity.pair_weights itself, and call it (the N-Cut on its PyTorch
    path; its fused kernel path computes the same weights in wnet.window_kernel, checked below)."""
    ncut = pytest.importorskip("wnet.ncut")
    assert ncut.pair_weights is wnet.affinity.pair_weights
    assert wnet.postprocess.crf.pair_weights is wnet.affinity.pair_weights
    assert ncut.window_apply is wnet.affinity.window_apply
    assert wnet.postprocess.crf.window_apply is wnet.affinity.window_apply
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[1:])
        return wnet.affinity.pair_weights(*args, **kwargs)

    monkeypatch.setattr(ncut, "pair_weights", spy)
    monkeypatch.setattr(wnet.postprocess.crf, "pair_weights", spy)
    img, q = torch.rand(1, 3, 8, 8), torch.softmax(torch.randn(1, 3, 8, 8), 1)
    eager = ncut.soft_ncut_loss(q, img * 255, radius=3.0, sigma_x=4.0, sigma_i=10.0, backend="eager")
    torch_crf(q, img, CRFParams(radius=3.0, sxy_gaussian=3.0, sxy_bilateral=80.0, srgb_bilateral=13.0))
    s2 = math.sqrt(2)
    assert calls == [(3.0, 4.0, 10.0), (3.0, 3.0 * s2, None), (3.0, 80.0 * s2, 13.0 * s2)]
    if wnet.window_kernel.available():  # the fused N-Cut: same affinity, so the same loss to rounding
        fused = ncut.soft_ncut_loss(q, img * 255, radius=3.0, sigma_x=4.0, sigma_i=10.0, backend="kernel")
        torch.testing.assert_close(fused, eager, rtol=1e-6, atol=0)


def test_torch_crf_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        torch_crf(torch.rand(1, 2, 4, 5), torch.rand(1, 3, 4, 6), CRFParams())
    with pytest.raises(ValueError, match=r"\(B, K, H, W\)"):
        torch_crf(torch.rand(2, 4, 5), torch.rand(1, 3, 4, 5), CRFParams())
    with pytest.raises(ValueError, match="radius"):
        torch_crf(torch.rand(1, 2, 4, 5), torch.rand(1, 3, 4, 5), CRFParams(radius=1.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_crf_cuda_matches_cpu():
    probs, image, _ = two_region_case()
    p = torch.from_numpy(probs)[None]
    im = torch.from_numpy(image).permute(2, 0, 1)[None]
    cpu = torch_crf(p, im, CRFParams())
    gpu = torch_crf(p.cuda(), im.cuda(), CRFParams())
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


def test_bench_crf_script_runs_on_tiny_images(tmp_path):
    """experiments/bench_crf.py end to end on two generated images (stand-in soft maps)."""
    import cv2

    bench = load_script("bench_crf")
    for i in range(2):
        _, image, _ = two_region_case(h=20, w=28, seed=i)
        cv2.imwrite(str(tmp_path / f"im{i}.png"), image)
    res = bench.main(["--images", str(tmp_path), "--k", "2", "--workers", "2", "--hierarchy"])
    assert res["images"] == 2 and res["k"] == 2 and res["pool_equals_loop"] is True
    assert 0.0 <= res["torch_vs_dense_agree_pct"] <= 100.0 and res["torch_cpu_img_s"] > 0
    assert res["initial_regions_mean"] >= 1
