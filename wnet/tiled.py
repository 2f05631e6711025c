"""A W-Net over a large image, tile by tile, without ever holding full-size soft maps.

:func:`wnet.inference.predict_tiled` blends the tiles' K soft maps into a full-size array: K x H x W
floats, 2.8 GB at K = 64 for a 12 MP photo, plus as much again for the division by the weights.
:func:`predict_reduced` gives what the post-processing needs instead, from the same tiles and the
same blending: the argmax labels at full size, and the blended soft maps as f x f block means on
the working grid of :mod:`wnet.postprocess.working`.

Each tile's share of a pixel is its ramp weight over the pixel's total weight (exactly 1 where the
tile is alone). The shares are summed into f x f blocks as each tile comes, so the working grid
is complete after the last tile. For the labels, the image is cut along every tile edge into
cells, each covered by a fixed set of tiles: a cell with one tile takes its argmax at once; a
cell shared by several keeps its K blended values from its first tile to its last, then takes
their argmax. Tiles run row by row, so only the cells along the current seams are open.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wnet.inference import blended_tiles, soft_maps, tile_grid
from wnet.postprocess.working import block_counts


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Indices outside ``[0, n)`` mirrored as ``F.pad(mode='reflect')`` does (edge not repeated)."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def padded_tile(x: torch.Tensor, y0: int, y1: int, x0: int, x1: int, pad: int) -> torch.Tensor:
    """``mirror_pad(x, pad)[..., y0 : y1 + 2 pad, x0 : x1 + 2 pad]`` without padding the whole image.

    Shape: x (B, C, H, W); returns (B, C, y1 - y0 + 2 pad, x1 - x0 + 2 pad)."""
    h, w = x.shape[-2:]
    iy = _reflect(torch.arange(y0 - pad, y1 + pad), h)
    ix = _reflect(torch.arange(x0 - pad, x1 + pad), w)
    return x[..., iy, :][..., ix]


def _add_blocks(acc: torch.Tensor, part: torch.Tensor, y0: int, x0: int, f: int) -> None:
    """Add the f x f block sums of ``part`` (placed at (y0, x0) in the image) into ``acc``.

    Shape: acc (B, K, ceil(H / f), ceil(W / f)); part (B, K, th, tw)."""
    th, tw = part.shape[-2:]
    ya, xa = y0 - y0 % f, x0 - x0 % f  # the first block's corner
    nby, nbx = -(-(y0 + th - ya) // f), -(-(x0 + tw - xa) // f)
    part = F.pad(part, (x0 - xa, nbx * f - (x0 + tw - xa), y0 - ya, nby * f - (y0 + th - ya)))
    sums = part.view(*part.shape[:2], nby, f, nbx, f).sum((3, 5))
    acc[..., ya // f : ya // f + nby, xa // f : xa // f + nbx] += sums


def cells(ys: list[tuple[int, int]], xs: list[tuple[int, int]]) -> list[tuple[tuple, list[int]]]:
    """The image cut along every tile edge: ``((y0, y1, x0, x1), indices of the tiles covering it)``
    for every cell, tiles numbered row by row as :func:`wnet.inference.blended_tiles` yields them."""
    ey = sorted({v for t in ys for v in t})
    ex = sorted({v for t in xs for v in t})
    out = []
    for a, b in zip(ey, ey[1:], strict=False):
        for c, d in zip(ex, ex[1:], strict=False):
            tiles = [
                i * len(xs) + j
                for i, (ty0, ty1) in enumerate(ys)
                for j, (tx0, tx1) in enumerate(xs)
                if ty0 <= a and b <= ty1 and tx0 <= c and d <= tx1
            ]
            out.append(((a, b, c, d), tiles))
    return out


@torch.no_grad()
def predict_reduced(
    model: nn.Module,
    x: torch.Tensor,
    amp: str = "none",
    pad: int = 64,
    max_pixels: int = 2**22,
    overlap: int = 64,
    factor: int = 1,
):
    """Full-resolution labels and the soft maps on the working grid of factor f, tile by tile.

    The labels are the argmax of what :func:`wnet.inference.predict_tiled` blends, and the soft
    maps its f x f block means (:func:`wnet.postprocess.working.block_mean`), up to float rounding;
    memory holds one tile, the working grid and the cells along the open seams (module docstring).
    U_Dec is not run: there is no reconstruction.

    Args:
        model, x, amp, pad, max_pixels, overlap: as :func:`wnet.inference.predict_tiled`.
        factor: the working grid's factor f (:func:`wnet.postprocess.working.work_factor`); at 1
            the soft maps are at full size.

    Shape:
        x: (B, C, H, W) in [0, 1]; returns labels (B, H, W) int64 and probs
        (B, K, ceil(H / f), ceil(W / f)) float32, on the CPU.
    """
    b, _, h, w = x.shape
    pad = max(0, min(pad, min(h, w) - 1))
    fits = b * (h + 2 * pad) * (w + 2 * pad) <= max_pixels
    ys, xs = ([(0, h)], [(0, w)]) if fits else tile_grid(h, w, pad, max(1, max_pixels // b), overlap)
    weight = torch.zeros(h, w)
    for y0, y1, x0, x1, wt in blended_tiles(ys, xs, overlap):
        weight[y0:y1, x0:x1] += wt
    grid = cells(ys, xs)
    x = x.cpu().float()
    labels, acc, open_cells = torch.empty(b, h, w, dtype=torch.int64), None, {}
    for t, (y0, y1, x0, x1, wt) in enumerate(blended_tiles(ys, xs, overlap)):
        probs = soft_maps(model, padded_tile(x, y0, y1, x0, x1, pad), amp, pad)  # (B, K, th, tw)
        if acc is None:  # (B, K, h, w): the working grid's sums
            acc = probs.new_zeros(b, probs.shape[1], -(-h // factor), -(-w // factor))
        probs.mul_(wt / weight[y0:y1, x0:x1])  # this tile's share; exactly 1 where it is alone
        _add_blocks(acc, probs, y0, x0, factor)
        for (a, bb, c, d), tiles in grid:
            if t not in tiles:
                continue
            part = probs[..., a - y0 : bb - y0, c - x0 : d - x0]  # (B, K, cell)
            if len(tiles) > 1:
                part = open_cells[(a, c)] = open_cells.get((a, c), 0) + part
            if t == tiles[-1]:  # the cell's last tile: its blend is complete
                labels[:, a:bb, c:d] = part.argmax(1)
                open_cells.pop((a, c), None)
    cy, cx = torch.from_numpy(block_counts(h, factor)), torch.from_numpy(block_counts(w, factor))
    return labels, acc / (cy[:, None] * cx[None, :])
