"""W-Net: two stacked U-Nets (Xia & Kulis 2017, sec. 2, fig. 1).

U_Enc maps an image to K soft classes (softmax); U_Dec maps that softmax back to the image.
Each U has 9 modules (4 down, 1 bottleneck, 4 up). A module is two 3x3 convolutions, each
followed by ReLU and BatchNorm. Modules 2-8 of each U use depthwise-separable convolutions
(paper, sec. 2: "to reduce the number of parameters"). Down-sampling is 2x2 max-pooling,
up-sampling a 2x2 transposed convolution, with skip connections by concatenation. Each U
ends in a 1x1 convolution. Widths are base_width * (1, 2, 4, 8, 16): 64-128-256-512-1024 in
the paper.

Any H x W works: inputs are padded (replicate) to a multiple of 16 and cropped back, so the
output has the input's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv3x3(cin: int, cout: int, separable: bool, padding: str = "zeros") -> nn.Module:
    if not separable:
        return nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding)
    # depthwise 3x3 then pointwise 1x1 (Chollet 2017), as in the paper's modules 2-8
    depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, padding_mode=padding)
    return nn.Sequential(depthwise, nn.Conv2d(cin, cout, 1))


class ConvModule(nn.Sequential):
    """Two (3x3 conv -> ReLU -> BatchNorm) blocks, optionally depthwise-separable, then dropout."""

    def __init__(self, cin: int, cout: int, separable: bool, dropout: float, padding: str = "zeros"):
        layers = [
            _conv3x3(cin, cout, separable, padding),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(cout),
            _conv3x3(cout, cout, separable, padding),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(cout),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UNet(nn.Module):
    """One U of the W-Net: 9 modules, ``in_channels`` -> ``out_channels`` (logits, no activation).

    Args:
        in_channels: input channels (1 or 3 for images, K for U_Dec).
        out_channels: channels of the final 1x1 convolution.
        base_width: channels of the first module; the paper uses 64.
        dropout: dropout probability after each module (the paper uses 0.65).
        separable: depthwise-separable convolutions in modules 2-8.
        padding: the 3x3 convolutions' ``padding_mode``: ``"zeros"`` (PyTorch's default),
            ``"reflect"``, ``"replicate"`` or ``"circular"``. Zero padding lets the net read
            absolute position from the borders, and a W-Net can then learn a content-blind
            tiling (see :mod:`wnet.positional`). Reflection and replication hide the border
            from a flat image; circular padding removes absolute position altogether (the net
            commutes with circular shifts by multiples of 16).

    Shape:
        x: (B, in_channels, H, W) with H, W multiples of 16; returns (B, out_channels, H, W).
    """

    depth = 4  # pooling steps; inputs must be multiples of 2**depth

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_width: int = 64,
        dropout: float = 0.0,
        separable: bool = True,
        padding: str = "zeros",
    ):
        super().__init__()
        widths = [base_width * 2**i for i in range(self.depth + 1)]  # 64-128-256-512-1024
        self.down = nn.ModuleList()
        cin = in_channels
        for i, w in enumerate(widths):
            # module 1 (i == 0) uses plain convolutions; modules 2..5 separable
            self.down.append(ConvModule(cin, w, separable and i > 0, dropout, padding))
            cin = w
        self.upconv = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in reversed(range(self.depth)):
            self.upconv.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            last = i == 0  # module 9 uses plain convolutions
            self.up.append(ConvModule(2 * widths[i], widths[i], separable and not last, dropout, padding))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, module in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = module(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for upconv, module in zip(self.upconv, self.up, strict=True):
            x = module(torch.cat([skips.pop(), upconv(x)], dim=1))
        return self.head(x)


def pad_to_multiple(x: torch.Tensor, multiple: int = 16) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad the bottom/right so H and W are multiples of ``multiple``; returns the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


class SegmentationUNet(UNet):
    """U_Enc's architecture as a supervised segmenter: a :class:`UNet` that accepts any H x W
    (replicate-pads to a multiple of 16 and crops back). Arguments as :class:`UNet`.

    Shape:
        x: (B, in_channels, H, W); returns logits (B, out_channels, H, W).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp, (h, w) = pad_to_multiple(x, 2**UNet.depth)
        return super().forward(xp)[..., :h, :w]


class WNet(nn.Module):
    """U_Enc (image -> K soft classes) stacked on U_Dec (soft classes -> image).

    Args:
        k: number of soft classes K.
        in_channels: image channels (1 or 3).
        base_width, dropout, separable, padding: see :class:`UNet`.

    Shape:
        x: (B, in_channels, H, W), any H and W.
        ``encode`` returns logits (B, K, H, W); ``forward`` returns (probs (B, K, H, W), recon (B, C, H, W)).

    References:
        Xia & Kulis, "W-Net: A Deep Model for Fully Unsupervised Image Segmentation", arXiv:1711.08506, 2017.
    """

    def __init__(
        self,
        k: int = 64,
        in_channels: int = 3,
        base_width: int = 64,
        dropout: float = 0.0,
        separable: bool = True,
        padding: str = "zeros",
    ):
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"WNet: in_channels must be 1 or 3, got {in_channels}")
        if k < 2:
            raise ValueError(f"WNet: k must be at least 2, got {k}")
        self.k = k
        self.in_channels = in_channels
        self.u_enc = UNet(in_channels, k, base_width, dropout, separable, padding)
        self.u_dec = UNet(k, in_channels, base_width, dropout, separable, padding)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"WNet expects (B, {self.in_channels}, H, W) input, got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor, u_enc: nn.Module | None = None) -> torch.Tensor:
        """U_Enc logits (B, K, H, W) for any H, W.

        ``u_enc``: run this module in place of ``self.u_enc`` (a DistributedDataParallel wrapper
        of it, so that its gradients are averaged over ranks).
        """
        self._check(x)
        xp, (h, w) = pad_to_multiple(x, 2**UNet.depth)
        return (self.u_enc if u_enc is None else u_enc)(xp)[..., :h, :w]

    def forward(
        self, x: torch.Tensor, u_enc: nn.Module | None = None, u_dec: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(probs (B, K, H, W), recon (B, C, H, W)); ``u_enc`` / ``u_dec`` as in :meth:`encode`."""
        self._check(x)
        xp, (h, w) = pad_to_multiple(x, 2**UNet.depth)
        probs = torch.softmax((self.u_enc if u_enc is None else u_enc)(xp), dim=1)  # (B, K, H', W')
        recon = (self.u_dec if u_dec is None else u_dec)(probs)  # (B, C, H', W')
        return probs[..., :h, :w], recon[..., :h, :w]
