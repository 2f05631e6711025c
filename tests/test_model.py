import pytest
import torch

from wnet.model import SegmentationUNet, UNet, WNet


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("hw", [(16, 16), (17, 23), (33, 20), (5, 7)])
def test_wnet_shapes_any_size(in_channels, hw):
    torch.manual_seed(0)
    model = WNet(k=5, in_channels=in_channels, base_width=4).eval()
    x = torch.rand(2, in_channels, *hw)
    probs, recon = model(x)
    assert probs.shape == (2, 5, *hw)
    assert recon.shape == (2, in_channels, *hw)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, *hw))
    assert model.encode(x).shape == (2, 5, *hw)


def test_wnet_rejects_wrong_channels():
    model = WNet(k=4, in_channels=3, base_width=4)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="in_channels"):
        WNet(k=4, in_channels=2)


def test_unet_structure_matches_paper():
    """9 modules; modules 1 and 9 plain, 2-8 depthwise separable; widths 64..1024 at base 64."""
    u = UNet(3, 64, base_width=64)
    modules = list(u.down) + list(u.up)
    assert len(modules) == 9

    def is_separable(m):
        return any(isinstance(c, torch.nn.Conv2d) and c.groups > 1 for c in m.modules())

    assert [is_separable(m) for m in modules] == [False] + [True] * 7 + [False]
    widths = [m[3].out_channels if not is_separable(m) else m[3][1].out_channels for m in u.down]
    assert widths == [64, 128, 256, 512, 1024]
    # each module: conv, ReLU, BN, conv, ReLU, BN
    kinds = [type(c).__name__ for c in u.down[0]]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d"]
    assert isinstance(u.upconv[0], torch.nn.ConvTranspose2d) and u.upconv[0].stride == (2, 2)
    assert u.head.kernel_size == (1, 1) and u.head.out_channels == 64


def test_dropout_is_configurable():
    u = UNet(3, 4, base_width=4, dropout=0.65)
    drops = [m for m in u.modules() if isinstance(m, torch.nn.Dropout2d)]
    assert len(drops) == 9 and all(d.p == 0.65 for d in drops)


def test_segmentation_unet_is_u_enc_shaped():
    net = SegmentationUNet(3, 11, base_width=4).eval()
    out = net(torch.rand(1, 3, 30, 41))
    assert out.shape == (1, 11, 30, 41)
    w = WNet(k=11, base_width=4)
    n_seg = sum(p.numel() for p in net.parameters())
    n_enc = sum(p.numel() for p in w.u_enc.parameters())
    assert n_seg == n_enc
