"""The checks of the ``segment`` section (``task=segment``): what it writes, its tiling, its folders.

Part of :mod:`wnet.tasks.validate`, which calls :func:`check_segment` on every config and
:func:`check_segment_folders` where the folders are on this machine.
"""

from __future__ import annotations

import glob
from pathlib import Path

from wnet.inference import min_tile_pixels
from wnet.tasks.errors import choice, need

SEGMENT_OUTPUTS = ("labels", "crf", "ucm2", "overlay", "probs")


def check_segment(cfg) -> None:
    """The ``segment`` section: outputs, tiling and post-processing sizes; input and output for task=segment."""
    s = cfg.segment
    for i, name in enumerate(s.outputs):
        choice(f"segment.outputs[{i}]", name, SEGMENT_OUTPUTS)
    need(
        len(s.outputs) == len(set(s.outputs)) >= 1,
        "segment.outputs",
        s.outputs,
        "a non-empty list, no repeats",
    )
    need(min(s.pad, s.num_samples) >= 0, "segment.pad/num_samples", (s.pad, s.num_samples), ">= 0")
    need(min(s.overlap, s.batch_size) >= 1, "segment.overlap/batch_size", (s.overlap, s.batch_size), ">= 1")
    low = min_tile_pixels(s.pad, s.overlap)
    need(s.max_pixels >= low, "segment.max_pixels", s.max_pixels, f">= {low} for this pad and overlap")
    need(s.post_max_pixels >= 1024, "segment.post_max_pixels", s.post_max_pixels, ">= 1024 (32 x 32)")
    if cfg.task == "segment":
        need(
            "crf" not in s.outputs or cfg.crf.kind != "none",
            "segment.outputs",
            s.outputs,
            "no 'crf' while crf.kind is none (or set crf.kind=dense)",
        )
        for key in ("input", "output"):
            need(bool(getattr(s, key)), f"segment.{key}", getattr(s, key), f"a path (segment.{key}=PATH)")


def check_segment_folders(s) -> None:
    """``segment.output`` outside the folder ``segment.input`` searches: a rerun would segment the outputs."""
    searched = Path(s.input)
    if glob.has_magic(s.input):  # the folder before the first wildcard
        parts = searched.parts
        searched = Path(*parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))] or ["."])
    elif not searched.is_dir():
        return  # one file: nothing is searched
    inside, out = searched.resolve(), Path(s.output).resolve()
    need(
        out != inside and inside not in out.parents,
        "segment.output",
        s.output,
        f"a folder outside segment.input ({s.input}), which is searched for images: a later run would "
        "segment its own outputs",
    )
