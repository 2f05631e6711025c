"""Tiny cases computed by hand (arithmetic written out), and agreement with torch's own losses.

Binary case used throughout: one 1 x 4 image, probabilities p = [0.9, 0.6, 0.2, 0.7] and target
g = [1, 1, 0, 0], so TP = 0.9 + 0.6 = 1.5, sum p = 2.4, sum g = 2, FP = 0.9, FN = 0.5,
sum p^2 = 0.81 + 0.36 + 0.04 + 0.49 = 1.7, and p_t (probability of the true label) =
[0.9, 0.6, 0.8, 0.3].

Multiclass case: one 1 x 3 image, C = 3, labels [0, 0, 1] (class 2 absent), probabilities
pixel 0 (0.7, 0.2, 0.1), pixel 1 (0.5, 0.3, 0.2), pixel 2 (0.2, 0.6, 0.2).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from wnet.losses import functional as LF

P = torch.tensor([0.9, 0.6, 0.2, 0.7], dtype=torch.float64).view(1, 1, 1, 4)
G = torch.tensor([1, 1, 0, 0]).view(1, 1, 1, 4)
PT = [0.9, 0.6, 0.8, 0.3]
MP = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.2, 0.6, 0.2]], dtype=torch.float64).T.reshape(
    1, 3, 1, 3
)
MG = torch.tensor([0, 0, 1]).view(1, 1, 3)


def binary(fn, **kw):
    return fn(P, G, mode="binary", from_logits=False, **kw).item()


def multi(fn, **kw):
    return fn(MP, MG, mode="multiclass", from_logits=False, **kw).item()


# ----------------------------------------------------------------------------- region, binary


@pytest.mark.parametrize(
    ("fn", "kw", "expected"),
    [
        (LF.dice_loss, {}, 1 - 2 * 1.5 / (2.4 + 2)),  # the default: Sorensen, no smoothing (as SMP)
        (LF.dice_loss, {"smooth": 0.0, "squared": True}, 1 - 2 * 1.5 / (1.7 + 2)),  # V-Net: squares below
        (LF.dice_loss, {"smooth": 0.0, "squared": False}, 1 - 2 * 1.5 / (2.4 + 2)),
        (LF.dice_loss, {"smooth": 1.0, "squared": False}, 1 - (3 + 1) / (4.4 + 1)),
        (LF.iou_loss, {"smooth": 0.0}, 1 - 1.5 / (2.4 + 2 - 1.5)),
        (LF.jaccard_loss, {"smooth": 1.0}, 1 - 2.5 / 3.9),
        (LF.tversky_loss, {"smooth": 0.0}, 1 - 1.5 / (1.5 + 0.3 * 0.9 + 0.7 * 0.5)),  # alpha on FP
        (LF.tversky_loss, {"smooth": 0.0, "alpha": 0.5, "beta": 0.5}, 1 - 3 / 4.4),  # = Dice
        (LF.focal_tversky_loss, {"smooth": 0.0}, (1 - 1.5 / 2.12) ** 0.75),  # exponent 1 / (4/3)
        (LF.focal_tversky_loss, {"smooth": 0.0, "gamma": 1.0}, 1 - 1.5 / 2.12),
        # F-beta, beta = 1.5: 1 - 3.25 * 1.5 / (3.25 * 1.5 + 2.25 * FN + FP)
        (LF.asymmetric_loss, {"smooth": 0.0}, 1 - 4.875 / (4.875 + 2.25 * 0.5 + 0.9)),
        # r * ((1-0.9)^2 + (1-0.6)^2) / 2 + (1 - r) * (0.2^2 + 0.7^2) / 2
        (LF.sensitivity_specificity_loss, {"smooth": 0.0}, 0.05 * 0.17 / 2 + 0.95 * 0.53 / 2),
    ],
)
def test_region_losses_by_hand_binary(fn, kw, expected):
    assert binary(fn, **kw) == pytest.approx(expected, rel=1e-10)


def test_asymmetric_is_tversky_with_fbeta_weights():
    b2 = 1.5**2
    tv = binary(LF.tversky_loss, smooth=0.0, alpha=1 / (1 + b2), beta=b2 / (1 + b2))
    assert binary(LF.asymmetric_loss, smooth=0.0) == pytest.approx(tv, rel=1e-12)


def test_generalized_dice_by_hand_binary_uses_both_channels():
    # fg: w = 1/2^2, TP 1.5, sum p + g = 4.4; bg: p0 = [0.1, 0.4, 0.8, 0.3], g0 = [0, 0, 1, 1],
    # w = 1/4, TP 1.1, sum p + g = 1.6 + 2 = 3.6
    gd = 2 * (0.25 * 1.5 + 0.25 * 1.1) / (0.25 * 4.4 + 0.25 * 3.6)
    assert gd == pytest.approx(0.65)
    assert binary(LF.generalized_dice_loss, smooth=0.0) == pytest.approx(1 - gd, rel=1e-10)
    # penalty: FP_w + FN_w = 0.25 * (0.9 + 0.5) + 0.25 * (0.5 + 0.9) = 0.7
    pgd = 2 * 0.65 / (2 * 0.65 + 3.5 * 0.7)
    assert pgd == pytest.approx(0.65 / (1 + 2.5 * (1 - 0.65)))  # GD / (1 + k (1 - GD))
    assert binary(LF.penalty_gdice_loss, smooth=0.0) == pytest.approx(1 - pgd, rel=1e-10)
    assert binary(LF.penalty_gdice_loss, smooth=0.0, k=0.0) == pytest.approx(1 - gd, rel=1e-10)


# ----------------------------------------------------------------------------- region, multiclass


def test_dice_multiclass_averages_present_classes_by_hand():
    # class 0: TP = 0.7 + 0.5, sum p = 1.4, sum g = 2; class 1: TP = 0.6, sum p = 1.1, sum g = 1
    d0 = 1 - 2 * 1.2 / 3.4
    d1 = 1 - 2 * 0.6 / 2.1
    d2 = 1 - 0 / 0.5  # absent class 2, sum p = 0.5: only with classes='all'
    kw = {"smooth": 0.0, "squared": False}
    assert multi(LF.dice_loss, **kw) == pytest.approx((d0 + d1) / 2, rel=1e-10)
    assert multi(LF.dice_loss, classes="all", **kw) == pytest.approx((d0 + d1 + d2) / 3, rel=1e-10)
    assert multi(LF.dice_loss, classes=[1], **kw) == pytest.approx(d1, rel=1e-10)
    assert multi(LF.dice_loss, weight=[3.0, 1.0, 5.0], **kw) == pytest.approx((3 * d0 + d1) / 4, rel=1e-10)
    assert multi(LF.dice_loss, reduction="sum", **kw) == pytest.approx(d0 + d1, rel=1e-10)
    none = LF.dice_loss(MP, MG, from_logits=False, reduction="none", **kw)
    torch.testing.assert_close(none, torch.tensor([d0, d1, d2], dtype=torch.float64))


def test_generalized_dice_multiclass_by_hand():
    # w0 = 1/2^2, w1 = 1/1^2; numerator 2 (0.25 * 1.2 + 1 * 0.6), denominator 0.25 * 3.4 + 2.1
    assert multi(LF.generalized_dice_loss, smooth=0.0) == pytest.approx(1 - 1.8 / 2.95, rel=1e-10)
    # classes='all': absent class 2 gets the largest weight (1) and adds its sum p = 0.5
    assert multi(LF.generalized_dice_loss, smooth=0.0, classes="all") == pytest.approx(
        1 - 1.8 / 3.45, rel=1e-10
    )


def test_per_image_dice_averages_images():
    p = torch.cat([P, P.flip(-1)])  # image 2: p = [0.7, 0.2, 0.6, 0.9]
    g = torch.cat([G, G])  # TP = 0.9, sum p = 2.4, sum g = 2
    d1, d2 = 1 - 3 / 4.4, 1 - 1.8 / 4.4
    got = LF.dice_loss(p, g, mode="binary", from_logits=False, smooth=0.0, squared=False, per_image=True)
    assert got.item() == pytest.approx((d1 + d2) / 2, rel=1e-10)
    batch = LF.dice_loss(p, g, mode="binary", from_logits=False, smooth=0.0, squared=False)
    assert batch.item() == pytest.approx(1 - 2 * 2.4 / 8.8, rel=1e-10)  # summed over the batch


# ----------------------------------------------------------------------------- distribution


def nll(values):
    return [-math.log(v) for v in values]


def test_focal_by_hand_keeps_the_exponent():
    a_t = [0.25, 0.25, 0.75, 0.75]  # alpha for y = 1, 1 - alpha for y = 0
    expected = sum(a * (1 - p) ** 2 * n for a, p, n in zip(a_t, PT, nll(PT), strict=True)) / 4
    assert binary(LF.focal_loss, alpha=0.25) == pytest.approx(expected, rel=1e-10)
    # a focal loss without the ** gamma would give sum (1 - p_t) * 2 * ... : check it differs
    wrong = sum(a * (1 - p) * 2 * n for a, p, n in zip(a_t, PT, nll(PT), strict=True)) / 4
    assert abs(binary(LF.focal_loss, alpha=0.25) - wrong) > 1e-2
    assert binary(LF.focal_loss, gamma=0.0) == pytest.approx(sum(nll(PT)) / 4, rel=1e-10)  # = CE


def test_topk_by_hand():
    # CE values -ln [0.9, 0.6, 0.8, 0.3] = [0.105, 0.511, 0.223, 1.204]; top 50 % = 2 pixels
    assert binary(LF.topk_cross_entropy, k=50) == pytest.approx(
        (-math.log(0.3) - math.log(0.6)) / 2, rel=1e-10
    )
    assert binary(LF.topk_cross_entropy, k=1) == pytest.approx(-math.log(0.3), rel=1e-10)  # ceil(0.04) = 1
    assert binary(LF.topk_cross_entropy, k=100) == pytest.approx(sum(nll(PT)) / 4, rel=1e-10)


def test_balanced_bce_by_hand():
    g = torch.tensor([1, 0, 0, 0]).view(1, 1, 1, 4)  # beta = |Y-| / |Y| = 3 / 4
    expected = -(0.75 * math.log(0.9) + 0.25 * (math.log(0.4) + math.log(0.8) + math.log(0.3))) / 4
    got = LF.balanced_bce(P, g, from_logits=False)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    got = LF.balanced_bce(P, g, from_logits=False, beta=0.5)
    assert got.item() == pytest.approx(0.5 * sum(nll([0.9, 0.4, 0.8, 0.3])) / 4, rel=1e-10)


def test_dist_penalized_ce_by_hand():
    # class 1 pixels {0, 1}: distance to class 0 = [2, 1], d_max 2 -> Phi = [0, 1];
    # class 0 pixels {2, 3}: distance = [1, 2] -> Phi = [1, 0]; weights 1 + Phi = [1, 2, 2, 1]
    expected = sum(w * n for w, n in zip([1, 2, 2, 1], nll(PT), strict=True)) / 4
    assert binary(LF.dist_penalized_ce) == pytest.approx(expected, rel=1e-10)


def test_conservative_by_hand():
    # lam (1 - u)^2 ln u with u = -ln p_t, lam = 5, base e
    expected = sum(5 * (1 - u) ** 2 * math.log(u) for u in nll(PT)) / 4
    assert binary(LF.conservative_loss) == pytest.approx(expected, rel=1e-10)
    # base 10: u = -log10 p, loss = lam (1 - u)^2 log10 u
    u10 = [-math.log10(p) for p in PT]
    expected10 = sum(5 * (1 - u) ** 2 * math.log10(u) for u in u10) / 4
    assert binary(LF.conservative_loss, base=10.0) == pytest.approx(expected10, rel=1e-10)


def test_exp_log_and_combo_by_hand():
    dice = (2 * 1.5 + 1) / (4.4 + 1)  # Sorensen Dice with smooth 1
    w = math.sqrt(4 / 2)  # (sum_k f_k / f_l) ** 0.5, two labels of 2 pixels each
    cross = sum(w * n**0.3 for n in nll(PT)) / 4
    expected = 0.8 * (-math.log(dice)) ** 0.3 + 0.2 * cross
    assert binary(LF.exp_log_loss) == pytest.approx(expected, rel=1e-10)
    bce = sum(nll(PT)) / 4
    # alpha * mean(-(beta y ln p + (1 - beta)(1 - y) ln(1 - p))) + (1 - alpha)(1 - Dice)
    assert binary(LF.combo_loss) == pytest.approx(0.5 * 0.5 * bce + 0.5 * (1 - dice), rel=1e-10)
    y = [1, 1, 0, 0]
    mce = -sum(
        0.8 * t * math.log(p) + 0.2 * (1 - t) * math.log(1 - p)
        for t, p in zip(y, [0.9, 0.6, 0.2, 0.7], strict=True)
    )
    got = binary(LF.combo_loss, alpha=0.3, beta=0.8)
    assert got == pytest.approx(0.3 * mce / 4 + 0.7 * (1 - dice), rel=1e-10)


# ----------------------------------------------------------------------------- Lovasz


def test_lovasz_softmax_binary_by_hand():
    # errors |g - p| = [0.1, 0.4, 0.2, 0.7]; sorted: 0.7 (g 0), 0.4 (g 1), 0.2 (g 0), 0.1 (g 1)
    # Jaccard loss of the top-i sets: 1 - 2/3, 1 - 1/3, 1 - 1/4, 1 - 0 -> increments 1/3, 1/3, 1/12, 1/4
    expected = 0.7 / 3 + 0.4 / 3 + 0.2 / 12 + 0.1 / 4
    assert binary(LF.lovasz_softmax) == pytest.approx(expected, rel=1e-10)


def test_lovasz_hinge_by_hand():
    z = torch.tensor([2.0, -0.5, -1.0, 0.5], dtype=torch.float64).view(1, 1, 1, 4)
    # hinge errors 1 - z * (2g - 1) = [-1, 1.5, 0, 1.5] -> relu [0, 1.5, 0, 1.5]; the two 1.5s
    # (one FN, one FP) give 1.5 * Delta_J({1, 3}) = 1.5 * (1 - 1/3)
    assert LF.lovasz_hinge(z, G).item() == pytest.approx(1.0, rel=1e-10)


def test_lovasz_softmax_applies_softmax():
    logits = torch.randn(1, 3, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = torch.tensor([[[0, 1, 2], [2, 1, 0]]])
    from_logits = LF.lovasz_softmax(logits, target)
    from_probs = LF.lovasz_softmax(logits.softmax(1), target, from_logits=False)
    assert from_logits.item() == pytest.approx(from_probs.item(), rel=1e-12)


def test_lovasz_grad_matches_the_jaccard_increments():
    g = torch.tensor([1.0, 0.0, 1.0, 0.0])  # ground truth in decreasing-error order, 2 positives
    # Jaccard loss of the top-i sets: 1 - 1/2, 1 - 1/3, 1 - 0/3, 1 - 0/4 -> take the increments
    expected = torch.tensor([0.5, (1 - 1 / 3) - 0.5, 1.0 - (1 - 1 / 3), 0.0])
    torch.testing.assert_close(LF.lovasz_grad(g), expected)


# ----------------------------------------------------------------------------- boundary


def test_boundary_by_hand():
    # phi of g = [1, 1, 0, 0] on a 1 x 4 row: inside -(d - 1) = [-1, 0], outside d = [1, 2]
    assert binary(LF.boundary_loss) == pytest.approx((-0.9 + 0 + 0.2 + 1.4) / 4, rel=1e-10)
    assert LF.boundary_loss(G.double(), G, mode="binary", from_logits=False).item() == pytest.approx(-1 / 4)


def test_hausdorff_dt_by_hand():
    # d_G (distance to the target boundary) = [2, 1, 1, 2]; predicted mask p > 0.5 = [1, 1, 0, 1]
    # gives d_P = [2, 1, 1, 1]; weights d_G^2 + d_P^2 = [8, 2, 2, 5]; (p - g)^2 = [.01, .16, .04, .49]
    expected = (8 * 0.01 + 2 * 0.16 + 2 * 0.04 + 5 * 0.49) / 4
    assert binary(LF.hausdorff_dt_loss) == pytest.approx(expected, rel=1e-10)
    assert binary(LF.hausdorff_dt_loss, alpha=1.0) == pytest.approx(
        (4 * 0.01 + 2 * 0.16 + 2 * 0.04 + 3 * 0.49) / 4
    )


def test_distance_maps_use_the_class_axis():
    """A class mask that is a column: its distances vary along x, whatever the class count."""
    target = torch.zeros(1, 3, 5, dtype=torch.long)
    target[0, :, 0] = 1  # class 1 = first column; class 0 = the rest
    probs = torch.zeros(1, 2, 3, 5, dtype=torch.float64)
    probs[:, 1] = 1.0  # predict class 1 everywhere
    # phi for class 1 is 0 in column 0 and 1, 2, 3, 4 in columns 1-4: mean 3 * 10 / 15 = 2
    got = LF.boundary_loss(probs, target, from_logits=False, classes=[1])
    assert got.item() == pytest.approx(2.0)


# ----------------------------------------------------------------------------- torch agreement


def _mc_case(seed=0, c=4):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, c, 5, 6, generator=gen, dtype=torch.float64)
    target = torch.randint(0, c, (2, 5, 6), generator=gen)
    target[0, :2, :2] = 255
    return logits, target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ce_matches_torch(reduction):
    logits, target = _mc_case()
    ours = LF.cross_entropy(logits, target, ignore_index=255, reduction=reduction)
    torch.testing.assert_close(
        ours, F.cross_entropy(logits, target, ignore_index=255, reduction=reduction), atol=1e-6, rtol=0
    )
    w = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    ours = LF.cross_entropy(logits, target, ignore_index=255, weight=w, reduction=reduction)
    ref = F.cross_entropy(logits, target, ignore_index=255, weight=w, reduction=reduction)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_wce_matches_torch_with_given_and_inverse_frequency_weights():
    logits, target = _mc_case(1)
    w = [0.5, 2.0, 1.0, 3.0]
    ref = F.cross_entropy(logits, target, ignore_index=255, weight=torch.tensor(w, dtype=torch.float64))
    assert LF.weighted_cross_entropy(logits, target, ignore_index=255, weight=w).item() == pytest.approx(
        ref.item(), abs=1e-6
    )
    valid = target[target != 255]
    counts = torch.bincount(valid, minlength=4).double()
    inv = valid.numel() / (4 * counts)  # w_c = N / (C n_c)
    ref = F.cross_entropy(logits, target, ignore_index=255, weight=inv)
    assert LF.weighted_cross_entropy(logits, target, ignore_index=255).item() == pytest.approx(
        ref.item(), abs=1e-6
    )


def test_binary_ce_bce_and_wce_match_torch():
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(2, 1, 4, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (2, 1, 4, 5), generator=gen)
    ref = F.binary_cross_entropy_with_logits(z, y.double())
    assert LF.cross_entropy(z, y, mode="binary").item() == pytest.approx(ref.item(), abs=1e-6)
    assert LF.binary_cross_entropy(z, y).item() == pytest.approx(ref.item(), abs=1e-6)
    pw = torch.tensor(3.0, dtype=torch.float64)
    ref = F.binary_cross_entropy_with_logits(z, y.double(), pos_weight=pw)
    assert LF.binary_cross_entropy(z, y, pos_weight=3.0).item() == pytest.approx(ref.item(), abs=1e-6)
    p = torch.sigmoid(z)
    ref = F.binary_cross_entropy(p, y.double())
    assert LF.binary_cross_entropy(p, y, from_logits=False).item() == pytest.approx(ref.item(), abs=1e-6)
    # binary wce = two-class CE on the scores (0, z) with weights [background, foreground]
    two = torch.cat([torch.zeros_like(z), z], 1)
    w = torch.tensor([0.3, 1.7], dtype=torch.float64)
    ref = F.cross_entropy(two, y[:, 0], weight=w)
    assert LF.weighted_cross_entropy(z, y, mode="binary", weight=w).item() == pytest.approx(
        ref.item(), abs=1e-6
    )


def test_float32_agrees_with_torch_too():
    logits, target = _mc_case(3)
    logits = logits.float()
    ref = F.cross_entropy(logits, target, ignore_index=255)
    assert LF.cross_entropy(logits, target, ignore_index=255).item() == pytest.approx(ref.item(), abs=1e-6)
