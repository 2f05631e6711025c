"""The files of ``task=segment``: where each output goes, atomic writes, and the pictures.

Above ``segment.post_max_pixels`` (a working-grid factor f > 1) the labels and the CRF labels are
written at the image's size; the ucm2 (unless ``segment.full_ucm2``), the soft maps and the overlay
at the working grid's (the overlay is a preview: a 12 MP one would be four 12 MP panels)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from wnet import visualize
from wnet.bsds.levels import ucm2_to_segmentations
from wnet.postprocess.working import image_at
from wnet.tasks.errors import writing

FILES = {  # output -> (folder, suffix) of its files; ucm2 also writes its picture
    "labels": ("labels", ".png"),
    "crf": ("crf", ".png"),
    "ucm2": ("ucm2", ".mat"),
    "ucm2_png": ("ucm2", ".png"),  # beside the .mat; the benchmark reads the .mat
    "overlay": ("overlay", ".png"),
    "probs": ("probs", ".npz"),
}


def output_paths(out: Path, rel: Path, outputs: list[str]) -> dict[str, Path]:
    """Every file one image gets: ``{output: DIR/<folder>/<sub-folders>/<stem><suffix>}``."""
    kinds = [*outputs, "ucm2_png"] if "ucm2" in outputs else list(outputs)
    return {k: out / FILES[k][0] / rel.parent / (rel.stem + FILES[k][1]) for k in kinds}


def umask_mode() -> int:
    """The mode a new file gets under the process's umask (0o666 & ~umask: 0o644 under umask 022).

    ``tempfile.mkstemp`` creates files with mode 0600 whatever the umask, and a rename keeps the
    mode, so the written outputs get this one explicitly. (The umask can only be read by setting
    it: it is put back at once.)"""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic(path: Path, tmp_dir: Path, write) -> None:
    """``write(tmp)`` to a temporary file with the same suffix, then rename it to ``path``; a failed
    write (a full disk) removes the temporary file and is one line naming ``path``."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, suffix=path.suffix)
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, umask_mode())  # mkstemp's 0600 would make every output private
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _imwrite(path: Path, tmp_dir: Path, image: np.ndarray) -> None:
    def write(tmp):
        ok, data = cv2.imencode(path.suffix, image)  # bytes written by Python: names need not be UTF-8
        if not ok:
            raise ValueError(f"could not encode an image as {path.suffix}")
        Path(tmp).write_bytes(data.tobytes())

    _atomic(path, tmp_dir, write)


# ----------------------------------------------------------------------------- pictures
def label_image(labels: np.ndarray, k: int) -> np.ndarray:
    """Labels as a PNG-ready array: uint8, or uint16 when K > 256."""
    return labels.astype(np.uint8 if k <= 256 else np.uint16)


def ucm2_picture(ucm2: np.ndarray) -> np.ndarray:
    """(H, W) uint8 contour strength: each pixel shows its right and lower cracks and their corner.

    Shape: ucm2 (2H+1, 2W+1) -> (H, W)."""
    right, below, corner = ucm2[1:-1:2, 2::2], ucm2[2::2, 1:-1:2], ucm2[2::2, 2::2]
    return (np.maximum(np.maximum(right, below), corner) * 255 + 0.5).astype(np.uint8)


def mid_level_regions(ucm2: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """The hierarchy cut at a middle level, each region in its mean colour, (H, W, 3) uint8.

    The middle is geometric: from R initial regions to 1, the cut with about sqrt(R) regions
    (each distinct level of a ucm2 is one merge, so the level with rank R - sqrt(R) leaves them)."""
    levels = np.unique(ucm2[ucm2 > 0])
    if levels.size == 0:
        return rgb.copy()
    n = levels.size + 1  # initial regions
    t = levels[min(levels.size - 1, max(0, n - round(np.sqrt(n)) - 1))]
    seg = ucm2_to_segmentations(ucm2, [t])[0]  # (H, W), labels from 1
    counts = np.bincount(seg.ravel())
    means = np.stack([np.bincount(seg.ravel(), rgb[..., c].ravel()) for c in range(3)], 1)
    return (means / np.maximum(counts, 1)[:, None]).round().astype(np.uint8)[seg]


def overlay(rgb: np.ndarray, k: int, labels: np.ndarray, crf_labels=None, ucm2=None) -> np.ndarray:
    """image | coloured segmentation | CRF (when run) | hierarchy at a mid level (when built)."""
    tiles = [rgb, visualize.colorize(labels, k)]
    if crf_labels is not None:
        tiles.append(visualize.colorize(crf_labels, k))
    if ucm2 is not None:
        tiles.append(mid_level_regions(ucm2, rgb))
    return visualize.panel(tiles)


def thumbnail(rgb: np.ndarray, side: int = 320) -> np.ndarray:
    """At most ``side`` px on the long side (nearest neighbour: label colours stay exact)."""
    f = side / max(rgb.shape[:2])
    if f >= 1:
        return rgb
    size = (max(1, round(rgb.shape[1] * f)), max(1, round(rgb.shape[0] * f)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST)


def write_outputs(job, paths: dict[str, Path], image, seg) -> None:
    """Write one image's outputs (each atomically) and keep a W&B sample while ``job.samples`` has room.

    Shape: image (H, W, C) in [0, 1]; seg a :class:`wnet.segmentation.Segmentation` of it."""
    rgb = visualize.to_uint8_rgb(image)
    small = image_at(rgb, seg.scale)  # (h, w, 3): the working grid's image
    labels_small = seg.probs.argmax(0)  # (h, w)
    crf_small = seg.refined.argmax(0) if seg.refined is not None else None
    full_ucm2 = job.cfg.segment.full_ucm2 and seg.scale > 1
    for kind, path in paths.items():
        if kind == "labels":
            _imwrite(path, job.tmp, label_image(seg.labels, job.k))
        elif kind == "crf":
            _imwrite(path, job.tmp, label_image(seg.crf_labels, job.k))
        elif kind == "ucm2":
            u = seg.full_ucm2() if full_ucm2 else seg.ucm2
            _atomic(path, job.tmp, lambda tmp, u=u: scipy.io.savemat(tmp, {"ucm2": u}, do_compression=True))
        elif kind == "ucm2_png":
            _imwrite(path, job.tmp, ucm2_picture(seg.ucm2))
        elif kind == "overlay":
            pic = overlay(small, job.k, labels_small, crf_small, seg.ucm2)
            _imwrite(path, job.tmp, cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
        elif kind == "probs":
            _atomic(path, job.tmp, lambda tmp: np.savez_compressed(tmp, probs=seg.probs.astype(np.float16)))
    if len(job.samples) < job.cfg.segment.num_samples:
        pics = [small, visualize.colorize(labels_small, job.k)]
        pics += [visualize.colorize(crf_small, job.k) if crf_small is not None else None]
        pics += [np.repeat(ucm2_picture(seg.ucm2)[..., None], 3, 2) if seg.ucm2 is not None else None]
        job.samples.append([None if a is None else thumbnail(a) for a in pics])
