"""Properties every loss in ``wnet.losses.LOSSES`` must have, parametrised over (name, mode).

Adding a loss to LOSSES adds it to every test here. Tensors are tiny (2 x 6 x 7, C = 3); the
non-square size catches height/width mix-ups in the distance maps.
"""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import distance_transform_edt

from wnet.losses import LOSSES, get_loss
from wnet.losses._module import keyword_names

B, C, H, W = 2, 3, 6, 7
CASES = [(name, mode) for name, cls in LOSSES.items() for mode in cls.modes]
IDS = [f"{n}-{m}" for n, m in CASES]
PER_IMAGE = [(n, m) for n, m in CASES if "per_image" in keyword_names(LOSSES[n].function)]


def make_target(mode: str) -> torch.Tensor:
    """Two images in which every class is present. multiclass (B, H, W) int64; binary (B, 1, H, W)."""
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    if mode == "multiclass":
        t0 = (xx >= 2).long() + (xx >= 5).long()  # vertical bands 0 | 1 | 2
        t1 = (yy >= 2).long() + ((yy >= 2) & (xx >= 4)).long()  # 0 on top, 1 | 2 below
        return torch.stack([t0, t1])
    t0 = (yy - 2) ** 2 + (xx - 3) ** 2 <= 4  # a disk
    t1 = (yy >= 3) & (xx < 4)  # a rectangle
    return torch.stack([t0, t1]).long().unsqueeze(1)


def perfect_logits(target: torch.Tensor, mode: str, margin: float) -> torch.Tensor:
    if mode == "multiclass":
        return margin * torch.nn.functional.one_hot(target, C).permute(0, 3, 1, 2).double()
    return margin * (2 * target.double() - 1)


def perfect_probs(target: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "multiclass":
        return torch.nn.functional.one_hot(target, C).permute(0, 3, 1, 2).double()
    return target.double()


def random_logits(mode: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (B, C, H, W) if mode == "multiclass" else (B, 1, H, W)
    return torch.randn(shape, generator=g, dtype=torch.float64)


def boundary_minimum(target: torch.Tensor, mode: str) -> float:
    """Kervadec's minimum, written out independently: mean over present classes of sum_{x in c} phi / N."""
    t = target[:, 0] if mode == "binary" else target
    classes = [1] if mode == "binary" else range(C)
    n = t.numel()
    values = []
    for c in classes:
        total = 0.0
        present = False
        for b in range(t.shape[0]):
            pos = (t[b] == c).numpy()
            if pos.any() and not pos.all():
                present = True
                total += float(-(distance_transform_edt(pos) - 1)[pos].sum())  # phi inside = -(d - 1)
        if present:
            values.append(total / n)
    return float(np.mean(values))


def expected_minimum(name: str, target: torch.Tensor, mode: str) -> float:
    if name == "conservative":  # lam (1 - eps)^2 ln(eps) with the defaults lam = 5, eps = 1e-6
        return 5 * (1 - 1e-6) ** 2 * math.log(1e-6)
    if name == "boundary":
        return boundary_minimum(target, mode)
    return 0.0


def build(name: str, mode: str, **kw):
    return get_loss(name, mode=mode, **kw)


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_perfect_prediction_reaches_minimum(name, mode):
    target = make_target(mode)
    expected = expected_minimum(name, target, mode)
    exact = build(name, mode, from_logits=False)(perfect_probs(target, mode), target)
    assert exact.item() == pytest.approx(expected, abs=1e-6)
    confident = build(name, mode)(perfect_logits(target, mode, 60.0), target)
    assert confident.item() == pytest.approx(expected, abs=1e-4)
    # and nothing scores lower than the perfect prediction
    noisy = build(name, mode)(random_logits(mode), target)
    assert noisy.item() > expected + 1e-3


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_loss_rises_as_prediction_is_corrupted(name, mode):
    target = make_target(mode)
    logits = perfect_logits(target, mode, 4.0)
    order = torch.randperm(B * H * W, generator=torch.Generator().manual_seed(1))[:12]
    loss = build(name, mode)
    values = [loss(logits, target).item()]
    for flat in order.tolist():
        b, rest = divmod(flat, H * W)
        y, x = divmod(rest, W)
        logits = logits.clone()
        if mode == "multiclass":
            wrong = (int(target[b, y, x]) + 1) % C
            logits[b, :, y, x] = 0.0
            logits[b, wrong, y, x] = 4.0
        else:
            logits[b, 0, y, x] = -logits[b, 0, y, x]
        values.append(loss(logits, target).item())
    steps = np.diff(values)
    assert (steps >= -1e-9).all(), f"{name} decreased while corrupting: {values}"
    assert values[-1] > values[0] + 1e-3
    # boundary: phi = 0 on the inner boundary (Kervadec's definition), so losing a pixel there
    # costs nothing; the loss is non-decreasing but not strictly increasing.
    if name != "boundary":
        assert (steps[:3] > 0).all(), f"{name}: the first corruptions did not raise the loss: {values[:4]}"


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_gradients_are_finite_and_nonzero(name, mode):
    logits = random_logits(mode).requires_grad_()
    build(name, mode)(logits, make_target(mode)).backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


def _ignore_block(target: torch.Tensor, value: int) -> torch.Tensor:
    t = target.clone()
    t[..., 1:3, 2:5] = value  # a 2 x 3 block in each image
    return t


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
@pytest.mark.parametrize("ignore", [255, -1, C], ids=["255", "-1", "C"])
def test_ignored_pixels_change_neither_value_nor_gradient(name, mode, ignore):
    target = _ignore_block(make_target(mode), ignore)
    mask = target == ignore  # (B, H, W) or (B, 1, H, W)
    pix = mask if mode == "multiclass" else mask[:, 0]
    loss = build(name, mode, ignore_index=ignore)
    logits = random_logits(mode).requires_grad_()
    value = loss(logits, target)
    value.backward()
    grad = logits.grad.permute(0, 2, 3, 1)[pix]  # (n_ignored, channels)
    assert torch.equal(grad, torch.zeros_like(grad)), "ignored pixels received gradient"
    assert logits.grad.abs().sum() > 0
    # other logits at the ignored pixels: same value
    other = logits.detach().clone().permute(0, 2, 3, 1)
    other[pix] = 25.0 * torch.randn(
        other[pix].shape, generator=torch.Generator().manual_seed(5), dtype=other.dtype
    )
    assert loss(other.permute(0, 3, 1, 2), target).item() == pytest.approx(value.item(), rel=1e-12, abs=1e-12)
    # the same pixels marked with another ignore label: same value
    relabel = 254 if ignore != 254 else 253
    alt = torch.where(mask, torch.full_like(target, relabel), target)
    alt_value = build(name, mode, ignore_index=relabel)(logits.detach(), alt)
    assert alt_value.item() == pytest.approx(value.item(), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_a_fully_ignored_image_is_the_same_as_dropping_it(name, mode):
    target = make_target(mode)
    logits = random_logits(mode)
    both = target.clone()
    both[1] = 255
    loss = build(name, mode, ignore_index=255)
    assert loss(logits, both).item() == pytest.approx(
        loss(logits[:1], target[:1]).item(), rel=1e-10, abs=1e-12
    )


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_all_pixels_ignored_gives_zero_and_zero_gradient(name, mode):
    target = torch.full_like(make_target(mode), 255)
    logits = random_logits(mode).requires_grad_()
    value = build(name, mode, ignore_index=255)(logits, target)
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits.grad))


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_empty_classes_and_all_background_give_no_nan(name, mode):
    target = make_target(mode)
    if mode == "multiclass":
        target = torch.where(target == 2, torch.ones_like(target), target)  # class 2 absent everywhere
    else:
        target = torch.zeros_like(target)  # all background
    for kw in [{}] + ([{"classes": "all"}] if "classes" in keyword_names(LOSSES[name].function) else []):
        logits = random_logits(mode, seed=3).requires_grad_()
        value = build(name, mode, **kw)(logits, target)
        value.backward()
        assert torch.isfinite(value), kw
        assert torch.isfinite(logits.grad).all(), kw


@pytest.mark.parametrize(("name", "mode"), PER_IMAGE, ids=[f"{n}-{m}" for n, m in PER_IMAGE])
def test_per_image_option_keeps_the_minimum(name, mode):
    target = make_target(mode)
    loss = build(name, mode, per_image=True, from_logits=False)
    value = loss(perfect_probs(target, mode), target)
    if name == "boundary":  # per image, the pixel means use each image's own N = H * W
        expected = np.mean([boundary_minimum(target[b : b + 1], mode) for b in range(B)])
    else:
        expected = expected_minimum(name, target, mode)
    assert value.item() == pytest.approx(expected, abs=1e-6)
    noisy = build(name, mode, per_image=True)(random_logits(mode).requires_grad_(), target)
    noisy.backward()
    assert noisy.item() > expected
