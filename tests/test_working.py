"""Post-processing at a working resolution (wnet/postprocess/working.py), the tile-by-tile model pass
that feeds it (wnet.tiled), and the one-call segment_image."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import read_level, same_partition
from PIL import Image

from wnet.inference import mirror_pad, predict_tiled, tile_grid
from wnet.model import WNet
from wnet.postprocess import CRFParams, Stages, postprocess
from wnet.postprocess.hierarchy import ucm2_from_labels
from wnet.postprocess.working import (
    block_mean,
    crf_labels_at,
    factor_between,
    scale_crf,
    upsample_argmax,
    upsample_ucm2,
    work_factor,
    work_shape,
)
from wnet.segmentation import Tiling, as_model_input, segment_image
from wnet.tiled import cells, padded_tile, predict_reduced


@pytest.mark.parametrize(
    "h, w, budget, f",
    [(321, 481, 200_000, 1), (321, 481, 154_401, 1), (321, 481, 154_400, 2), (4000, 2700, 2**20, 4),
     (4000, 2700, 2**19, 5), (4000, 3000, 2**19, 5), (10, 10, 1, 10), (7, 5, None, 1)],
)  # fmt: skip
def test_work_factor_is_the_smallest_that_fits(h, w, budget, f):
    assert work_factor(h, w, budget) == f
    if budget:
        assert math.prod(work_shape(h, w, f)) <= budget
        assert f == 1 or math.prod(work_shape(h, w, f - 1)) > budget
    assert factor_between(work_shape(h, w, f), (h, w)) == f


def test_factor_between_refuses_a_size_no_factor_gives():
    with pytest.raises(ValueError, match="neither the image's size"):
        factor_between((100, 80), (321, 481))


def test_block_mean_by_hand():
    a = np.arange(15, dtype=np.float32).reshape(3, 5)  # rows 0-4, 5-9, 10-14
    # blocks of 2 x 2; the last row and column are cut by the border: mean of what is there
    want = [[(0 + 1 + 5 + 6) / 4, (2 + 3 + 7 + 8) / 4, (4 + 9) / 2], [(10 + 11) / 2, (12 + 13) / 2, 14]]
    np.testing.assert_allclose(block_mean(a, 2), want)
    np.testing.assert_array_equal(block_mean(a[None], 1)[0], a)
    assert block_mean(np.ones((2, 7, 9)), 3).shape == (2, 3, 3)


def test_scale_crf_keeps_what_the_kernels_cover():
    p = scale_crf(CRFParams(sxy_gaussian=3, sxy_bilateral=80, radius=7), 2)
    assert (p.sxy_gaussian, p.sxy_bilateral, p.radius, p.srgb_bilateral) == (1.5, 40, 3.5, 13)
    p = scale_crf(CRFParams(sxy_gaussian=3, sxy_bilateral=80, radius=7), 4)  # floors: 1 px, 2 px
    assert (p.sxy_gaussian, p.sxy_bilateral, p.radius, p.srgb_bilateral) == (1.0, 20, 2.0, 13)
    assert scale_crf(CRFParams(), 1) == CRFParams()


@pytest.mark.parametrize("f, band", [(2, 1), (3, 2), (4, 16)])
def test_upsample_argmax_band_by_band_is_the_whole_interpolation(f, band):
    g = torch.Generator().manual_seed(f)
    q = torch.rand(5, 9, 7, generator=g)
    size = (9 * f - 1, 7 * f - f + 1)  # the border blocks cut short
    whole = F.interpolate(q[None], scale_factor=f, mode="bilinear", align_corners=False)[0]
    want = whole[:, : size[0], : size[1]].argmax(0).numpy()
    np.testing.assert_array_equal(upsample_argmax(q.numpy(), size, f, band=band), want)


def test_crf_labels_at_full_size_keep_the_detail_the_crf_left_alone():
    labels = np.zeros((4, 4), int)
    labels[3, 3] = 1  # finer than a 2 x 2 block: the working grid says 0 there
    probs = np.stack([np.full((2, 2), 0.9), np.full((2, 2), 0.1)]).astype(np.float32)
    refined = probs.copy()
    refined[:, 0, 0] = [0.1, 0.9]  # the CRF changed the top-left block only
    want = labels.copy()
    want[:2, :2] = 1
    np.testing.assert_array_equal(crf_labels_at(labels, probs, refined, 2), want)
    np.testing.assert_array_equal(crf_labels_at(labels, probs, refined, 1), refined.argmax(0))


def test_upsample_ucm2_is_the_blockwise_segmentation_at_every_level():
    labels = np.array([[0, 0, 1], [2, 2, 1]])
    small = ucm2_from_labels(labels) * 0.5  # one level, 0.5
    small[small > 0] = np.where(np.arange((small > 0).sum()) % 2, 0.5, 0.8)  # two levels
    f, size = 3, (5, 8)  # the last block row and column cut short
    full = upsample_ucm2(small, size, f)
    assert full.shape == (2 * 5 + 1, 2 * 8 + 1)
    for t in (0.0, 0.6, 0.9):
        blocks = np.kron(read_level(small, t), np.ones((f, f), int))[: size[0], : size[1]]
        assert same_partition(read_level(full, t), blocks), t


@pytest.mark.parametrize("box", [(0, 5, 0, 7), (3, 9, 2, 11), (5, 12, 6, 13)])
def test_padded_tile_is_the_mirror_padded_image_cut(box):
    x = torch.arange(2 * 12 * 13, dtype=torch.float32).reshape(1, 2, 12, 13)
    y0, y1, x0, x1 = box
    want = mirror_pad(x, 4)[..., y0 : y1 + 8, x0 : x1 + 8]
    assert torch.equal(padded_tile(x, y0, y1, x0, x1, 4), want)


def test_cells_cover_the_image_once_each_with_their_tiles():
    ys, xs = tile_grid(300, 200, 16, 100 * 100, 16)
    count = np.zeros((300, 200), int)
    for (a, b, c, d), tiles in cells(ys, xs):
        count[a:b, c:d] += 1
        for t in tiles:  # every listed tile contains the cell, and no other does
            (ty0, ty1), (tx0, tx1) = ys[t // len(xs)], xs[t % len(xs)]
            assert ty0 <= a < b <= ty1 and tx0 <= c < d <= tx1
        others = [i for i in range(len(ys) * len(xs)) if i not in tiles]
        assert all(not (ys[i // len(xs)][0] <= a and b <= ys[i // len(xs)][1] and
                        xs[i % len(xs)][0] <= c and d <= xs[i % len(xs)][1]) for i in others)  # fmt: skip
    assert (count == 1).all() and len(ys) * len(xs) > 4


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return WNet(k=5, base_width=4).eval()


@pytest.mark.parametrize("f", [1, 2, 3])
@pytest.mark.parametrize("budget", [2 * 90 * 90, 10**6])  # tiles of 90 x 90 for a batch of 2; one pass
def test_predict_reduced_is_the_tiled_prediction_reduced(tiny, f, budget):
    torch.set_num_threads(1)
    x = torch.rand(2, 3, 150, 230, generator=torch.Generator().manual_seed(1))
    probs, _ = predict_tiled(tiny, x, "none", 16, budget, 16)
    labels, small = predict_reduced(tiny, x, "none", 16, budget, 16, f)
    assert small.shape == (2, 5, *work_shape(150, 230, f))
    np.testing.assert_allclose(small.numpy(), block_mean(probs.numpy(), f), atol=1e-6)
    assert (labels == probs.argmax(1)).float().mean() == 1.0


def _picture(h=60, w=90):
    y, x = np.mgrid[:h, :w]
    rgb = np.stack([(x * 255 // w), (y * 255 // h), ((x // 15 + y // 15) % 2) * 200], -1)
    return rgb.astype(np.uint8)


def test_postprocess_on_the_working_grid(tiny):
    rgb = _picture()
    probs = predict_reduced(tiny, torch.from_numpy(as_model_input(rgb)).permute(2, 0, 1)[None])[1][0]
    stages = Stages(crf=CRFParams(kind="torch", radius=3))
    full = postprocess(probs, rgb, stages, ("merge",))
    reduced = postprocess(probs, rgb, stages, ("merge",), max_pixels=1500)  # 60 x 90 -> 30 x 45
    assert (full.scale, reduced.scale) == (1, 2)
    assert reduced.refined.shape == (5, 30, 45) and reduced.ucm2["merge"].shape == (61, 91)
    given = postprocess(block_mean(probs.numpy(), 2), rgb, stages, ("merge",))  # reduced by the caller
    np.testing.assert_array_equal(given.ucm2["merge"], reduced.ucm2["merge"])
    assert given.scale == 2


def test_segment_image_takes_numpy_and_pil_alike(tiny):
    torch.set_num_threads(1)
    rgb = _picture()
    stages = Stages(crf=CRFParams(kind="torch", radius=3))
    a = segment_image(tiny, rgb, stages, "merge")
    b = segment_image(tiny, Image.fromarray(rgb), stages, "merge")
    c = segment_image(tiny, rgb.astype(np.float32) / 255, stages, "merge")
    for s in (a, b, c):
        assert s.labels.shape == s.crf_labels.shape == (60, 90) and s.ucm2.shape == (121, 181)
        np.testing.assert_array_equal(s.labels, a.labels)
        np.testing.assert_array_equal(s.crf_labels, a.crf_labels)
    grey = segment_image(tiny, Image.fromarray(rgb).convert("L"), Stages(crf=CRFParams(kind="none")), None)
    assert grey.labels.shape == (60, 90) and grey.crf_labels is None and grey.ucm2 is None


def test_segment_image_on_a_working_grid_keeps_full_size_labels(tiny):
    rgb = _picture()
    tiling = Tiling(pad=8, max_pixels=64 * 64, overlap=16, post_max_pixels=1500)  # 2 x 2 tiles
    s = segment_image(tiny, rgb, Stages(crf=CRFParams(kind="torch", radius=3)), "merge", tiling)
    assert s.scale == 2 and s.probs.shape == (5, 30, 45) and s.ucm2.shape == (61, 91)
    assert s.labels.shape == s.crf_labels.shape == (60, 90)
    assert s.full_ucm2().shape == (121, 181)
    assert (crf_labels_at(s.labels, s.probs, s.refined, 2) == s.crf_labels).all()


@pytest.mark.parametrize(
    "bad, message",
    [(np.zeros((4, 4, 2), np.uint8), r"\(H, W, 3\)"), (np.full((4, 4), 2.0), r"\[0, 1\]"),
     (np.zeros((4, 4), np.int64), "dtype")],
)  # fmt: skip
def test_as_model_input_refuses_what_it_cannot_read(bad, message):
    with pytest.raises(ValueError, match=message):
        as_model_input(bad)


def test_as_model_input_by_hand():
    x = as_model_input(np.array([[0, 255]], np.uint8))
    assert x.shape == (1, 2, 3) and x[0, 1].tolist() == [1, 1, 1]
    rgba = np.array([[[255, 0, 0, 7]]], np.uint8)
    assert as_model_input(rgba, 1)[0, 0, 0] == pytest.approx(0.299)
    assert as_model_input(np.array([[65535]], np.uint16))[0, 0].tolist() == [1, 1, 1]
