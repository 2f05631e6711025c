"""``task=segment``: a trained W-Net applied to any images, with the CRF, the hierarchy and tiling.

    python experiments/run.py task=segment segment.input=PATH segment.output=DIR [checkpoint=runs/NAME/last.pt]

Without ``checkpoint=``, the shipped pretrained W-Net (``bsds500_cpu``, docs/model_card.md) is used.
``segment.input`` is an image file, a folder (searched recursively) or a glob; images are read as
the loaders read them (grey, RGB, RGBA, 8 and 16 bit). The model and its config come from the
checkpoint. Under ``DIR``, one file per image, named by its stem, in the input's sub-folders:

    labels/<stem>.png    argmax labels (uint8; uint16 when K > 256)
    crf/<stem>.png       labels after the CRF (``crf.*``)
    ucm2/<stem>.mat      the hierarchy of the CRF output, key ``ucm2``, in the official BSDS format:
                         ``python -m wnet.bsds DIR/ucm2 GT_DIR`` scores the folder as it is
    ucm2/<stem>.png      a picture of it (contour strength, white on black); the benchmark skips a
                         .png beside a .mat of the same name
    overlay/<stem>.png   image | segmentation | CRF | hierarchy at a mid level
    probs/<stem>.npz     soft maps (K, H, W) as float16, key ``probs`` (opt-in)
    index.csv            one row per image: status, size, tiles, working-grid factor, outputs, seconds per stage
    failures.txt         the images that could not be read (missing, undecodable, truncated), one per
                         line (only if any); file names that are not UTF-8 appear escaped (\\xNN) here
                         and in index.csv

Images run at full resolution with mirror padding (``segment.pad``), in overlapping tiles with
blended seams above ``segment.max_pixels`` (:func:`wnet.segmentation.segment_images`). Above
``segment.post_max_pixels`` the CRF and the hierarchy run on a grid downscaled f times
(:mod:`wnet.postprocess.working`): labels and CRF labels are still written at full size, the
ucm2, the overlay and the soft maps at the working grid's (``segment.full_ucm2=true``: the ucm2 at
full size). Images whose outputs all exist are skipped, so a rerun continues an interrupted run;
every file is written to a temporary name and renamed (with the mode the umask gives), so a killed
run leaves no half-written output. Under torchrun each rank segments its share of the images and
writes their files; rank 0 writes ``index.csv`` and the W&B table.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wnet import zoo
from wnet.datasets.images import IMAGE_EXTS, list_images, read_image, shown
from wnet.inference import tile_grid
from wnet.segmentation import Tiling, segment_images
from wnet.tasks import distributed
from wnet.tasks.build import stages
from wnet.tasks.config import Config
from wnet.tasks.errors import InputError
from wnet.tasks.keys import dump_config
from wnet.tasks.runtime import load_wnet, pick_device
from wnet.tasks.segment_files import output_paths, umask_mode, write_outputs
from wnet.tasks.wandb_sink import WandbSink

STAGES = ("read", "model", "crf", "hierarchy", "write")
COLUMNS = [
    "image",
    "status",
    "height",
    "width",
    "tiles",
    "scale",
    "outputs",
    *(f"seconds_{s}" for s in STAGES),
    "error",
]


# ----------------------------------------------------------------------------- inputs and outputs
def _glob_base(pattern: str) -> Path:
    """The folder before a glob's first wildcard (``photos/2024/**/*.png`` -> ``photos/2024``)."""
    parts = Path(pattern).parts
    fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]]
    return Path(*fixed) if fixed else Path(".")


def find_images(spec: str) -> list[tuple[Path, Path]]:
    """``(file, path relative to the input)`` of every image named by ``segment.input``, sorted."""
    path = Path(spec)
    if path.is_file():
        pairs = [(path, Path(path.name))]
    elif path.is_dir():
        try:
            pairs = [(f, f.relative_to(path)) for f in list_images(path)]
        except FileNotFoundError as e:
            raise InputError(f"segment.input: {e}") from None
    elif glob.has_magic(spec):
        base = _glob_base(spec)
        found = sorted(Path(f) for f in glob.glob(spec, recursive=True))
        pairs = [(f, f.relative_to(base)) for f in found if f.is_file() and f.suffix.lower() in IMAGE_EXTS]
        if not pairs:
            raise InputError(f"segment.input: the glob {spec} matches no images ({', '.join(IMAGE_EXTS)})")
    else:
        raise InputError(f"segment.input: {spec} is no file or folder (and not a glob)")
    seen: dict[Path, Path] = {}
    for f, rel in pairs:  # x.jpg and x.png in one folder would write the same outputs
        key = rel.with_suffix("")
        if key in seen:
            raise InputError(f"segment.input: {seen[key]} and {f} would write the same outputs (same stem)")
        seen[key] = f
    return pairs


def check_writable(out: Path) -> None:
    """Create the output folder and a file in it, or refuse with one line naming the folder."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise InputError(f"segment.output: cannot write to {out} ({e.strerror or e})") from None


# ----------------------------------------------------------------------------- one batch
class Job:
    """What every batch needs: the config, the model, K, the output folder and the stages to run."""

    def __init__(self, cfg: Config, model, k: int, channels: int, out: Path):
        self.cfg, self.model, self.k, self.channels, self.out = cfg, model, k, channels, out
        self.tmp = out / ".tmp"
        s, outputs = cfg.segment, cfg.segment.outputs
        self.tiling = Tiling(s.pad, s.max_pixels, s.overlap, s.post_max_pixels, cfg.train.amp)
        self.run_ucm2 = "ucm2" in outputs
        self.run_crf = cfg.crf.kind != "none" and ("crf" in outputs or self.run_ucm2)
        self.stages = stages(cfg)
        if not self.run_crf:
            self.stages = dataclasses.replace(
                self.stages, crf=dataclasses.replace(self.stages.crf, kind="none")
            )
        self.samples: list[list] = []

    def tiles(self, h: int, w: int) -> int:
        s = self.cfg.segment
        pad = max(0, min(s.pad, min(h, w) - 1))
        if (h + 2 * pad) * (w + 2 * pad) <= s.max_pixels:
            return 1
        ys, xs = tile_grid(h, w, pad, s.max_pixels, s.overlap)
        return len(ys) * len(xs)


def segment_batch(job: Job, batch: list[tuple[Path, Path, np.ndarray, float]]) -> list[dict]:
    """Segment same-size images ``(file, relative path, image (H, W, C), read seconds)``; their rows.

    The model runs once for the batch (tiled when large), then the CRF and the hierarchy ``ucm``
    picks, in a process pool (``crf.workers``), on the working grid."""
    images = [b[2] for b in batch]
    ucm = job.cfg.ucm if job.run_ucm2 else None
    segs = segment_images(job.model, images, job.stages, ucm, job.tiling, workers=job.cfg.crf.workers)
    rows = []
    for (_, rel, image, t_read), seg in zip(batch, segs, strict=True):
        t0 = time.perf_counter()
        paths = output_paths(job.out, rel, job.cfg.segment.outputs)
        write_outputs(job, paths, image, seg)
        t_write = time.perf_counter() - t0
        h, w = image.shape[:2]
        t = seg.seconds
        seconds = dict(zip(STAGES, (t_read, t["model"], t["crf"], t["hierarchy"], t_write), strict=True))
        written = [shown(path.relative_to(job.out)) for path in paths.values()]
        rows.append(_row(rel, "done", h, w, job.tiles(h, w), written, seconds, scale=seg.scale))
    return rows


def _row(rel: Path, status: str, h="", w="", tiles="", outputs=(), seconds=None, error="", scale="") -> dict:
    row = {"image": shown(rel), "status": status, "height": h, "width": w, "tiles": tiles, "scale": scale}
    row["outputs"] = " ".join(outputs)
    row.update({f"seconds_{s}": round(v, 4) for s, v in (seconds or {}).items()})
    row["error"] = error
    return row


# ----------------------------------------------------------------------------- all images
def _batches(job: Job, chunk: list[tuple[Path, Path, np.ndarray, float]]):
    """Same-size images together, at most ``batch_size`` and ``max_pixels`` (padded) per batch."""
    s = job.cfg.segment
    by_size: dict[tuple, list] = {}
    for item in chunk:
        by_size.setdefault(item[2].shape, []).append(item)
    for (h, w, _), items in by_size.items():
        pad = max(0, min(s.pad, min(h, w) - 1))
        n = max(1, min(s.batch_size, s.max_pixels // ((h + 2 * pad) * (w + 2 * pad))))
        for i in range(0, len(items), n):
            yield items[i : i + n]


def segment_all(job: Job, items: list[tuple[Path, Path]]) -> list[dict]:
    """Read, segment and write ``items`` in chunks of ``batch_size`` files; an unreadable image is
    skipped with a warning and a ``failed`` row."""
    rows, n = [], job.cfg.segment.batch_size
    bar = tqdm(total=len(items), desc="segment", unit="img")
    for start in range(0, len(items), n):
        chunk = []
        for f, rel in items[start : start + n]:
            t0 = time.perf_counter()
            try:
                chunk.append((f, rel, read_image(f, job.channels), time.perf_counter() - t0))
            except (OSError, ValueError) as e:  # FileNotFoundError is an OSError
                tqdm.write(f"warning: {e}; skipped", file=sys.stderr)
                rows.append(_row(rel, "failed", error=str(e)))
                bar.update(1)
        for batch in _batches(job, chunk):
            rows += segment_batch(job, batch)
            bar.update(len(batch))
    bar.close()
    return rows


def _previous_rows(index: Path) -> dict[str, dict]:
    if not index.is_file():
        return {}
    with open(index, newline="") as f:
        return {r["image"]: r for r in csv.DictReader(f)}


def write_index(out: Path, rows: list[dict], skipped: list[Path]) -> Path:
    """``index.csv``: this run's rows, and for skipped images the row of the run that made them."""
    old = _previous_rows(out / "index.csv")
    rows = rows + [{**old.get(shown(rel), _row(rel, "")), "status": "skipped"} for rel in skipped]
    rows.sort(key=lambda r: r["image"])
    fd, tmp = tempfile.mkstemp(dir=out, suffix=".csv")
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, restval="")
        w.writeheader()
        w.writerows(rows)
    os.chmod(tmp, umask_mode())  # mkstemp's 0600 would make the file private
    os.replace(tmp, out / "index.csv")
    return out / "index.csv"


def summarise(out: Path, rows: list[dict], skipped: int) -> str:
    """One line: images done, skipped and failed, and the mean seconds per stage of those done."""
    done = [r for r in rows if r["status"] == "done"]
    failed = len(rows) - len(done)
    line = f"segment: {len(done)} images done, {skipped} skipped (done before), {failed} failed; outputs in {out}"
    if done:
        means = {s: float(np.mean([r[f"seconds_{s}"] for r in done])) for s in STAGES}
        line += "; mean seconds per image: " + ", ".join(f"{s} {v:.3f}" for s, v in means.items())
        line += f", total {sum(means.values()):.3f}"
    return line


def _log_samples(sink: WandbSink, samples: list[list]) -> None:
    cols = ["image", "segmentation", "crf", "ucm2"]
    keep = [i for i in range(len(cols)) if any(s[i] is not None for s in samples)]
    sink.table("segment_samples", [cols[i] for i in keep], [[s[i] for i in keep] for s in samples])


def _finish(job: Job, rows: list[dict], skipped: list[Path], sink: WandbSink) -> None:
    """Rank 0: index.csv, failures.txt, the summary line and the W&B table; raises if any image failed."""
    out = job.out
    index = write_index(out, rows, skipped)
    failed = [r for r in rows if r["status"] == "failed"]
    listing = out / "failures.txt"
    if failed:
        listing.write_text("".join(f"{r['image']}: {r['error']}\n" for r in failed))
    elif listing.exists():
        listing.unlink()  # from an earlier run whose failures are now fixed or gone
    print(summarise(out, rows, len(skipped)))
    print(f"wrote {index}")
    if job.samples:
        _log_samples(sink, job.samples)
    sink.summary({"segment/images": len(rows), "segment/failed": len(failed)})
    if failed:
        raise InputError(f"{len(failed)} of {len(rows)} images could not be read; the list is in {listing}")


def _pending(cfg: Config, items: list[tuple[Path, Path]], out: Path) -> tuple[list, list[Path]]:
    """(images to segment, relative paths of those whose outputs all exist and are skipped)."""
    s = cfg.segment
    done = set()
    if s.skip_done:
        done = {
            rel for _, rel in items if all(p.is_file() for p in output_paths(out, rel, s.outputs).values())
        }
    return [(f, rel) for f, rel in items if rel not in done], sorted(done)


PRETRAINED = "bsds500_cpu"  # the shipped W-Net that runs when no checkpoint= is given


def load_model(cfg: Config, device: torch.device):
    """``(model, its config)`` of ``checkpoint=`` (a run's checkpoint or a weights file), or of the
    shipped weights file when none is given."""
    if cfg.checkpoint:
        return load_wnet(cfg.checkpoint, device, cfg)
    path = zoo.pretrained_path(PRETRAINED)
    if not path.is_file():  # a package installed without its data files
        raise InputError(f"no checkpoint= given, and the shipped model {path} is missing")
    print(
        f"segment: no checkpoint= given, so the shipped pretrained W-Net '{PRETRAINED}' is used "
        f"({zoo.PRETRAINED[PRETRAINED]})"
    )
    return load_wnet(path, device, cfg)


def main(cfg: Config) -> dict:
    s, d = cfg.segment, distributed.current()
    items = find_images(s.input)
    device = distributed.device(d, cfg.train.device) or pick_device(cfg.train.device)
    model, saved = load_model(cfg, device)  # the checkpoint's model; no contrary model.*
    out = Path(s.output)
    check_writable(out)  # before any work
    job = Job(cfg, model, saved.model.k, saved.model.in_channels, out)
    job.tmp.mkdir(exist_ok=True)
    pending, done = _pending(cfg, items, out)
    distributed.barrier()  # every rank has listed what is done before any rank writes
    print(f"segment: {len(items)} images, {len(done)} done before, {len(pending)} to do; K={job.k}, {device}")
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    sink = WandbSink(cfg, out, rank=d.rank, job_type="segment")
    try:
        if d.main:
            (out / "segment.yaml").write_text(dump_config(dataclasses.replace(cfg, model=saved.model)))
        parts = distributed.gather(segment_all(job, distributed.shard(pending, d)))
        distributed.barrier()
        if d.main:
            _finish(job, [r for part in parts for r in part], done, sink)
    finally:
        sink.finish()
        torch.set_num_threads(threads)
        if d.main and job.tmp.is_dir() and not any(job.tmp.iterdir()):
            job.tmp.rmdir()
    return {"output": str(out), "done_before": len(done), "processed": len(pending)}
