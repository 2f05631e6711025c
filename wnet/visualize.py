"""Pictures of segmentations: colour maps and input | segmentation | reconstruction panels."""

from __future__ import annotations

import colorsys
from pathlib import Path

import cv2
import numpy as np
import torch


def palette(n: int) -> np.ndarray:
    """``n`` distinct RGB colours (uint8, (n, 3)), golden-ratio hues so neighbours in id differ."""
    cols = []
    for i in range(n):
        h = (i * 0.618033988749895) % 1.0
        s = 0.65 + 0.35 * ((i // 7) % 2)
        v = 0.95 - 0.3 * ((i // 3) % 2)
        cols.append([int(255 * c) for c in colorsys.hsv_to_rgb(h, s, v)])
    return np.array(cols, np.uint8)


def colorize(labels: np.ndarray, n: int | None = None, colours: np.ndarray | None = None) -> np.ndarray:
    """Label map (H, W) -> RGB uint8 (H, W, 3); ids outside the palette are black."""
    labels = np.asarray(labels)
    colours = palette(n or int(labels.max()) + 1) if colours is None else np.asarray(colours, np.uint8)
    out = np.zeros((*labels.shape, 3), np.uint8)
    valid = (labels >= 0) & (labels < len(colours))
    out[valid] = colours[labels[valid]]
    return out


def to_uint8_rgb(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) float tensor in [0, 1] (C = 1 or 3) -> (H, W, 3) uint8."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def panel(tiles: list[np.ndarray], gap: int = 4, min_height: int = 0) -> np.ndarray:
    """Tiles (H, W, 3) uint8 side by side with a white gap; small tiles are enlarged (nearest
    neighbour, integer factor) to at least ``min_height`` so that pixels stay visible."""
    h = max(t.shape[0] for t in tiles)
    if min_height and h < min_height:
        h *= -(-min_height // h)
    sep = np.full((h, gap, 3), 255, np.uint8)
    row = []
    for i, t in enumerate(tiles):
        if t.shape[0] != h:
            t = cv2.resize(t, (round(t.shape[1] * h / t.shape[0]), h), interpolation=cv2.INTER_NEAREST)
        row += [t] if i == 0 else [sep, t]
    return np.concatenate(row, axis=1)


def grid(rows: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Stack panels vertically (padding each to the widest)."""
    w = max(r.shape[1] for r in rows)
    out = []
    for i, r in enumerate(rows):
        if r.shape[1] < w:
            r = np.concatenate([r, np.full((r.shape[0], w - r.shape[1], 3), 255, np.uint8)], axis=1)
        if i:
            out.append(np.full((gap, w, 3), 255, np.uint8))
        out.append(r)
    return np.concatenate(out, axis=0)


def save_rgb(path: str | Path, rgb: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode an image as {path.suffix}")
    path.write_bytes(data.tobytes())  # by Python: OpenCV crashes on names that are not UTF-8


def bar_chart(
    path: str | Path, values: dict[str, np.ndarray], labels: list[str], ylabel: str, title: str
) -> None:
    """Grouped bars: x = ``labels``, one bar per entry of ``values`` (name -> one value per label);
    NaN draws as 0. The legend sits outside the axes, so it never hides a bar."""
    from matplotlib.figure import Figure  # a Figure needs no pyplot and no global backend

    n, c = len(values), len(labels)
    width = 0.8 / n
    fig = Figure(figsize=(min(18.0, max(7.0, 4.0 + 0.15 * c * n)), 4.5))
    ax = fig.subplots()
    for i, (name, v) in enumerate(values.items()):
        ax.bar(np.arange(c) + (i - (n - 1) / 2) * width, np.nan_to_num(v), width, label=name)
    ax.set_xticks(np.arange(c), labels, rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def header_strip(names: list[str], widths: list[int], gap: int = 4) -> np.ndarray:
    """A white strip with each column's name over it (the layout of :func:`panel`)."""
    strip = np.full((18, sum(widths) + gap * (len(widths) - 1), 3), 255, np.uint8)
    x = 0
    for name, w in zip(names, widths, strict=True):
        scale = min(0.4, 0.4 * w / max(1, 7 * len(name)))  # shrink long names to fit the tile
        cv2.putText(strip, name, (x + 2, 13), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        x += w + gap
    return strip


def titled_grid(path: str | Path, rows: list[list[np.ndarray]], names: list[str]) -> None:
    """Rows of (H, W, 3) uint8 tiles under a header naming each column, saved as one PNG."""
    widths = [t.shape[1] for t in rows[0]]
    save_rgb(path, grid([header_strip(names, widths), *(panel(tiles) for tiles in rows)]))
