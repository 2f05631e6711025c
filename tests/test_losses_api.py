"""get_loss, compounds, module wrappers and input checking of wnet.losses."""

import ast
from pathlib import Path

import pytest
import torch

import wnet.losses as L
from wnet.losses import LOSSES, CompoundLoss, get_loss, parse_spec
from wnet.losses import functional as LF

REGION = [
    "dice",
    "iou",
    "tversky",
    "focal_tversky",
    "asymmetric",
    "generalized_dice",
    "penalty_gdice",
    "lovasz_softmax",
]


def case(c=4, seed=0, ignore=None):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, c, 5, 6, generator=gen, dtype=torch.float64)
    target = torch.randint(0, c, (2, 5, 6), generator=gen)
    if ignore is not None:
        target[:, 0, :3] = ignore
    return logits, target


def test_single_name_returns_the_module_itself():
    loss = get_loss("dice", mode="binary", smooth=0.0)
    assert isinstance(loss, L.DiceLoss)
    assert loss.options == {"mode": "binary", "smooth": 0.0}


def test_every_loss_class_is_importable_from_the_package():
    for name, cls in LOSSES.items():
        assert getattr(L, cls.__name__) is cls, name
    assert L.JaccardLoss is L.IoULoss


@pytest.mark.parametrize("spec", ["dice+ce", " Dice + CE ", {"dice": 1, "ce": 1.0}, ["dice", "ce"]])
def test_sum_specs_give_the_sum_of_members(spec):
    logits, target = case(ignore=255)
    loss = get_loss(spec, mode="multiclass", ignore_index=255)
    assert isinstance(loss, CompoundLoss)
    expected = LF.dice_loss(logits, target, ignore_index=255) + LF.cross_entropy(
        logits, target, ignore_index=255
    )
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-12)
    assert set(loss.last_terms) == {"dice", "ce"}


def test_weighted_specs():
    logits, target = case()
    dice, ce = LF.dice_loss(logits, target).item(), LF.cross_entropy(logits, target).item()
    assert get_loss({"dice": 1.0, "ce": 0.5})(logits, target).item() == pytest.approx(dice + 0.5 * ce)
    assert get_loss("0.5*dice + ce")(logits, target).item() == pytest.approx(0.5 * dice + ce)
    assert parse_spec("2*focal+0.1*boundary") == {"focal": 2.0, "boundary": 0.1}
    single = get_loss("0.5*dice")
    assert isinstance(single, CompoundLoss)
    assert single(logits, target).item() == pytest.approx(0.5 * dice)


def test_trainer_call_with_ignore_index_equal_to_c_and_class_weights():
    c = 11
    logits, target = case(c=c, ignore=11)
    w = [float(i + 1) for i in range(c)]
    wce = get_loss("wce", mode="multiclass", ignore_index=11, weight=w)
    ref = torch.nn.functional.cross_entropy(
        logits, target, ignore_index=11, weight=torch.tensor(w, dtype=torch.float64)
    )
    assert wce(logits, target).item() == pytest.approx(ref.item(), abs=1e-6)
    both = get_loss("dice+ce", mode="multiclass", ignore_index=11)
    assert torch.isfinite(both(logits, target))


def test_shared_kwargs_reach_only_members_that_accept_them_and_per_member_kwargs_override():
    logits, target = case()
    loss = get_loss({"focal": 1.0, "dice": 1.0}, gamma=1.0, smooth=0.0, focal={"gamma": 3.0})
    assert loss.losses["focal"].options == {"gamma": 3.0}
    assert loss.losses["dice"].options == {"smooth": 0.0}
    expected = LF.focal_loss(logits, target, gamma=3.0) + LF.dice_loss(logits, target, smooth=0.0)
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-12)
    only = get_loss({"focal": 1.0}, focal={"gamma": 3})
    assert only(logits, target).item() == pytest.approx(LF.focal_loss(logits, target, gamma=3).item())


def test_spec_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown loss 'dise'.*dice"):
        get_loss("dise+ce")
    with pytest.raises(ValueError, match="accepted by no loss"):
        get_loss("dice+ce", gamma=2.0)
    with pytest.raises(ValueError, match="not in"):
        get_loss("dice", focal={"gamma": 2.0})
    with pytest.raises(ValueError, match="twice"):
        get_loss("dice+dice")
    with pytest.raises(ValueError, match="finite number"):
        get_loss({"dice": "a lot"})
    with pytest.raises(ValueError, match="weight\\*name"):
        get_loss("x*dice")
    with pytest.raises(ValueError, match="names no loss"):
        get_loss([])
    with pytest.raises(ValueError, match="unknown argument.*valid"):
        L.DiceLoss(gama=2)
    with pytest.raises(ValueError, match="supports mode"):
        get_loss("bce", mode="multiclass")
    with pytest.raises(ValueError, match="mode must be"):
        get_loss("dice", mode="multilabel")
    with pytest.raises(ValueError, match="reduction"):
        get_loss("ce", reduction="avg")


def test_compound_rejects_unreduced_members():
    logits, target = case()
    with pytest.raises(ValueError, match="scalar reduction"):
        get_loss("dice+ce", reduction="none")(logits, target)


def test_weights_are_buffers_that_follow_the_module():
    loss = get_loss("wce", weight=[1.0, 2.0, 3.0, 4.0])
    assert "weight" in dict(loss.named_buffers())
    loss = loss.double()
    assert loss.weight.dtype == torch.float64
    logits, target = case()
    ref = torch.nn.functional.cross_entropy(
        logits, target, weight=torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    )
    assert loss(logits, target).item() == pytest.approx(ref.item(), abs=1e-6)


@pytest.mark.parametrize("name", REGION)
def test_region_losses_are_positive_fractions(name):
    """1 - score, never -score: values in [0, 1] for any prediction."""
    for seed in range(3):
        logits, target = case(seed=seed)
        value = get_loss(name)(logits * 3, target).item()
        assert 0.0 < value <= 1.0


def test_iou_is_differentiable_not_an_argmax():
    logits, target = case()
    logits.requires_grad_()
    LF.iou_loss(logits, target).backward()
    assert logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("logits", "target", "mode", "match"),
    [
        (
            torch.randn(2, 3, 4, 4),
            torch.zeros(2, 4, 5, dtype=torch.long),
            "multiclass",
            "target \\(B, H, W\\)",
        ),
        (
            torch.randn(2, 4, 4),
            torch.zeros(2, 4, 4, dtype=torch.long),
            "multiclass",
            "logits \\(B, C, H, W\\)",
        ),
        (torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), 3), "multiclass", "outside \\[0, 3\\)"),
        (torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4), "multiclass", "integer class ids"),
        (torch.randn(2, 1, 4, 4), torch.full((2, 1, 4, 4), 2), "binary", "0 or 1"),
        (torch.randn(2, 2, 4, 4), torch.zeros(2, 2, 4, 4), "binary", "binary mode expects logits"),
        (torch.randn(2, 1, 4, 4), torch.zeros(2, 1, 4, 5), "binary", "same shape"),
        (
            torch.zeros(2, 3, 4, 4, dtype=torch.long),
            torch.zeros(2, 4, 4, dtype=torch.long),
            "multiclass",
            "floating",
        ),
    ],
)
def test_bad_inputs_fail_loudly(logits, target, mode, match):
    with pytest.raises(ValueError, match=match):
        LF.dice_loss(logits, target, mode=mode)


def test_probabilities_outside_unit_interval_are_rejected():
    with pytest.raises(ValueError, match="from_logits=False expects probabilities"):
        LF.cross_entropy(
            torch.randn(1, 3, 2, 2) * 5, torch.zeros(1, 2, 2, dtype=torch.long), from_logits=False
        )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x, t: LF.dice_loss(x, t, classes="some"), "classes must be"),
        (lambda x, t: LF.dice_loss(x, t, classes=[7]), "list of ids"),
        (lambda x, t: LF.dice_loss(x, t, weight=[1.0, 2.0]), "4 entries"),
        (lambda x, t: LF.focal_loss(x, t, alpha=0.25), "C=4 entries"),
        (lambda x, t: LF.topk_cross_entropy(x, t, k=0), "percentage"),
        (lambda x, t: LF.balanced_bce(x, t, mode="multiclass"), "binary-only"),
        (lambda x, t: LF.lovasz_hinge(x, t, mode="multiclass"), "binary-only"),
        (lambda x, t: LF.combo_loss(x, t, reduction="none"), "'mean' or 'sum'"),
        (lambda x, t: LF.dice_loss(x, t, smooth=-1), "smooth"),
    ],
)
def test_bad_arguments_fail_loudly(call, match):
    logits, target = case()
    with pytest.raises(ValueError, match=match):
        call(logits, target)


def test_binary_accepts_channel_or_no_channel_and_float_or_bool_targets():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1, 4, 4, generator=gen)
    y = torch.randint(0, 2, (2, 1, 4, 4), generator=gen)
    ref = LF.dice_loss(z, y, mode="binary")
    for zz, yy in [(z[:, 0], y[:, 0]), (z, y.float()), (z, y.bool()), (z[:, 0], y)]:
        assert LF.dice_loss(zz, yy, mode="binary").item() == pytest.approx(ref.item())


def test_reduction_none_shapes():
    logits, target = case()
    assert LF.cross_entropy(logits, target, reduction="none").shape == (2, 5, 6)
    assert LF.dice_loss(logits, target, reduction="none").shape == (4,)
    assert LF.dice_loss(logits, target, reduction="none", per_image=True).shape == (2, 4)
    assert LF.generalized_dice_loss(logits, target, reduction="none", per_image=True).shape == (2,)
    z, y = logits[:, :1], (target > 1).long().unsqueeze(1)
    assert LF.lovasz_hinge(z, y, reduction="none").shape == (2,)


def test_library_imports_only_torch_numpy_scipy_and_itself():
    """No dependency on the W-Net model, W&B or data code (checked on the source, no subprocess)."""
    allowed = {"torch", "numpy", "scipy", "math", "inspect", "collections", "dataclasses", "__future__"}
    for path in Path(L.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = set() if node.level else {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"


def test_half_precision_logits_are_computed_in_float32():
    logits, target = case()
    half = logits.bfloat16().requires_grad_()
    value = LF.dice_loss(half, target)
    value.backward()
    assert value.dtype == torch.float32
    assert half.grad.dtype == torch.bfloat16 and torch.isfinite(half.grad.float()).all()
    ref = LF.dice_loss(half.detach().double(), target)
    assert value.item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    for name, cls in LOSSES.items():
        mode = cls.modes[0]
        logits, target = case(ignore=255)
        if mode == "binary":
            logits, target = logits[:, :1], (target > 1).long().masked_fill(target == 255, 255).unsqueeze(1)
        loss = get_loss(name, mode=mode, ignore_index=255)
        cpu = loss(logits, target)
        gpu = loss.cuda()(logits.cuda(), target.cuda())
        assert gpu.device.type == "cuda", name
        assert gpu.item() == pytest.approx(cpu.item(), rel=1e-6, abs=1e-9), name
