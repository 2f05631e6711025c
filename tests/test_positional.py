"""Positional kappa (wnet.positional) on hand-checkable label maps, and the W-Net's padding option."""

import math

import cv2
import numpy as np
import pytest
import torch
from helpers import TINY, load_script

from wnet.datasets.images import read_image
from wnet.model import WNet
from wnet.positional import positional_kappa
from wnet.tasks.cli import run
from wnet.tasks.distributed import Dist
from wnet.tasks.runtime import load_wnet
from wnet.tasks.unsupervised import positional_score, warn_if_positional


def halves(axis: int, n: int = 8) -> torch.Tensor:
    """Two classes, split into halves along ``axis`` (0: top/bottom, 1: left/right)."""
    m = torch.zeros(n, n, dtype=torch.long)
    if axis == 0:
        m[n // 2 :] = 1
    else:
        m[:, n // 2 :] = 1
    return m


@pytest.mark.parametrize(
    "maps, expected",
    [
        # the same map twice: a pure tiling agrees everywhere
        ([halves(0), halves(0)], 1.0),
        # top/bottom against left/right: agree on half the pixels, chance is 0.5*0.5+0.5*0.5
        ([halves(0), halves(1)], 0.0),
        # a map against its complement: never agree, chance 0.5
        ([halves(0), 1 - halves(0)], -1.0),
        # three maps: pairs (1, 0, 0) -> mean 1/3
        ([halves(0), halves(0), halves(1)], 1 / 3),
    ],
)
def test_kappa_by_hand(maps, expected):
    kappa, pairs = positional_kappa(maps, k=2)
    assert kappa == pytest.approx(expected, abs=1e-12)
    assert pairs == len(maps) * (len(maps) - 1) // 2


def test_chance_comes_from_each_map_s_own_frequencies():
    # a has class 1 on 1/4 of the pixels (top-left quadrant), b on the top half:
    # agree = 1/4 (top-left) + 1/2 (bottom half) = 3/4; chance = 3/4*1/2 + 1/4*1/2 = 1/2 -> kappa 1/2
    a = torch.zeros(8, 8, dtype=torch.long)
    a[:4, :4] = 1
    b = 1 - halves(0)
    kappa, _ = positional_kappa([a, b], k=2)
    assert kappa == pytest.approx(0.5)


def test_maps_of_different_sizes_meet_at_the_top_left_corner():
    big = torch.zeros(12, 16, dtype=torch.long)
    big[:4] = 1  # the top half of its top-left 8x8 corner is class 1, like 1 - halves(0)
    kappa, pairs = positional_kappa([big, 1 - halves(0)], k=2)
    assert (kappa, pairs) == (pytest.approx(1.0), 1)


def test_undefined_cases():
    one = torch.zeros(8, 8, dtype=torch.long)
    assert math.isnan(positional_kappa([one], k=2)[0])  # no pair
    kappa, pairs = positional_kappa([one, one], k=2)  # one class everywhere: chance = 1
    assert math.isnan(kappa) and pairs == 0
    # max_images caps the maps: 3 of 5 -> 3 pairs
    assert positional_kappa([halves(0)] * 5, k=2, max_images=3) == (pytest.approx(1.0), 3)


def test_positional_score_is_absent_without_pairs():
    single = Dist()  # one process: no reduction
    assert positional_score([halves(0), halves(1)], 2, single) == {"positional_kappa": pytest.approx(0.0)}
    assert positional_score([halves(0)], 2, single) == {}


@pytest.mark.parametrize("padding, sees_border", [("zeros", True), ("reflect", False), ("replicate", False)])
def test_padding_and_the_border_cue(padding, sees_border):
    # A flat image carries no content: after the first module (two 3x3 convolutions) the
    # features can only vary if the padding makes the border visible.
    torch.manual_seed(0)
    model = WNet(k=4, base_width=4, padding=padding).eval()
    with torch.no_grad():
        feats = model.u_enc.down[0](torch.full((1, 3, 32, 32), 0.5))  # (1, 4, 32, 32)
    spread = (feats - feats[..., 16:17, 16:17]).abs().max().item()
    assert (spread > 1e-3) if sees_border else (spread < 1e-6)


def test_circular_padding_leaves_no_absolute_position():
    # With circular padding and sides that are multiples of 16 (the 4 poolings), the whole W-Net
    # commutes with circular shifts by 16 pixels: a label map cannot depend on where the borders are.
    torch.manual_seed(0)
    model = WNet(k=4, base_width=4, padding="circular").eval()
    x = torch.rand(1, 3, 48, 64)
    shift = (16, 32)
    with torch.no_grad():
        a = model.encode(torch.roll(x, shift, dims=(2, 3)))
        b = torch.roll(model.encode(x), shift, dims=(2, 3))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("padding", ["zeros", "reflect", "replicate", "circular"])
def test_padding_reaches_every_3x3_convolution(padding):
    model = WNet(k=4, base_width=4, padding=padding)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 2 * 9 * 2  # 2 Us x 9 modules x 2 convolutions (depthwise ones included)
    assert all(m.padding_mode == padding for m in convs)


@pytest.mark.parametrize(
    "scores, warns", [({"positional_kappa": 0.94}, True), ({"positional_kappa": 0.2}, False), ({}, False)]
)
def test_a_tiling_is_reported_loudly(scores, warns, capsys):
    warn_if_positional(scores)
    out = capsys.readouterr().out
    assert ("warning: held-out positional kappa 0.94 > 0.5" in out) == warns
    assert bool(out) == warns


def test_positional_crops_script_matches_the_library(tmp_path):
    # experiments/positional_crops.py (the README's crop figures) on a tiny model: its kappa is
    # positional_kappa of the model's argmax maps on the same crops, and a too-small image is refused
    run([*TINY, "train.iterations=2", "train.threads=1", f"out_dir={tmp_path}", "name=w"])
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    positional_crops = load_script("positional_crops")

    out = positional_crops.main(
        ["--checkpoint", str(tmp_path / "w"), "--images", str(folder), "--size", "32"]
    )
    assert out["pairs"] == 3
    model, _ = load_wnet(tmp_path / "w", torch.device("cpu"))
    model.eval()
    x = torch.stack(
        [torch.from_numpy(read_image(folder / f"{i}.png")).permute(2, 0, 1)[:, :32, :32] for i in range(3)]
    )
    with torch.no_grad():
        labels = list(model.encode(x).argmax(1))
    assert out["kappa"] == pytest.approx(positional_kappa(labels, 4)[0])
    with pytest.raises(SystemExit, match="image folder .*nope does not exist"):
        positional_crops.main(["--checkpoint", str(tmp_path / "w"), "--images", str(tmp_path / "nope")])
    with pytest.raises(SystemExit, match="at least 64 px"):
        positional_crops.main(["--checkpoint", str(tmp_path / "w"), "--images", str(folder), "--size", "64"])
