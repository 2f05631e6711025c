"""Benchmark ``task=segment`` on a large photo: time per megapixel and peak memory, and the working
grid's CRF against the whole-image CRF.

    python experiments/bench_segment.py --data /path/to/BSDS500 --json bench.json
    python experiments/bench_segment.py --data ... --checkpoint runs/x/last.pt --baseline /tmp/old-checkout

The large image is BSDS500 val 101085 (321 x 481, portrait) upscaled bicubically to ``--size``
(default 2700 x 4000, 10.8 MP, what a 12 MP phone gives after a crop). Each run is the user's
command, ``experiments/run.py task=segment`` with the default outputs (labels, crf, ucm2, overlay),
one torch thread and the CRF in the same process (``crf.workers=1``), in a subprocess whose peak
resident memory comes from the kernel (``os.wait4``'s ``ru_maxrss``: what ``/usr/bin/time -v``
prints as "Maximum resident set size"), and its CPU seconds (user + system: steadier than the
wall time on a shared machine). The native 101085 and a medium upscale (``--medium``, 1.7 MP) are
run the same way: the ratio of the seconds per megapixel says how the cost scales with size.
``--baseline DIR`` runs another checkout (a copy of an older commit: ``git archive COMMIT | tar -x
-C DIR``) on the same inputs just before, and the ratios this / baseline are printed; it skips the
images above ``--baseline-max-mp`` (before the working grid, the 10.8 MP photo's whole-image CRF
and hierarchy grew past 21 GB and the kernel killed it on a 23 GB machine). Without ``--checkpoint`` this checkout uses its shipped
model (a baseline needs a checkpoint).

``--agreement N`` measures, for the first N val images upscaled ``--agreement-scale`` times, how the
CRF on the working grid (``segment.post_max_pixels`` giving factor ``--agreement-factor``, labels
upsampled: ``wnet/postprocess/working.py``) agrees with the dense CRF on the whole image: the
percentage of pixels with the same label (argmax agreement), and, for scale, the percentage of
pixels the whole-image CRF changes at all (so the agreement of no CRF at all is 100 minus that). The defaults (3 times, factor 2) stand for the 12 MP
photo (8.3 times, factor 5): a working grid about as fine relative to the content, and about as
many full pixels per block edge relative to the image; the whole-image CRF of the 12 MP photo
itself would take tens of GB.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from wnet import zoo
from wnet.datasets.images import bsds_files, read_image
from wnet.postprocess import CRFParams, Stages, postprocess
from wnet.postprocess.crf import dense_crf
from wnet.postprocess.working import block_mean, crf_labels_at, work_shape
from wnet.tasks import load_wnet
from wnet.tiled import predict_reduced

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "101085"  # BSDS500 val: the image of the 12 MP test


def upscaled(data: Path, stem: str, size: tuple[int, int] | None, dest: Path) -> Path:
    """BSDS500 val ``stem`` resized (bicubic) to ``size`` = (width, height) (None: as it is), as a PNG."""
    src = data / "images" / "val" / f"{stem}.jpg"
    bgr = cv2.imread(str(src))
    if bgr is None:
        raise SystemExit(f"error: cannot read {src} (--data must be the BSDS500 folder)")
    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_CUBIC) if size else bgr
    path = dest / f"{stem}_{bgr.shape[1]}x{bgr.shape[0]}.png"
    cv2.imwrite(str(path), bgr)
    return path


def run_segment(repo: Path, image: Path, out: Path, checkpoint: str | None) -> dict:
    """One ``task=segment`` command of checkout ``repo``: wall seconds, peak RSS, seconds per stage."""
    cmd = [sys.executable, str(repo / "experiments" / "run.py"), "task=segment", f"segment.input={image}",
           f"segment.output={out}", "train.threads=1", "crf.workers=1", "wandb.mode=disabled",
           *([f"checkpoint={checkpoint}"] if checkpoint else [])]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed:\n{log[-3000:]}")
    with open(out / "index.csv", newline="") as f:
        row = next(csv.DictReader(f))
    h, w = int(row["height"]), int(row["width"])
    cpu = usage.ru_utime + usage.ru_stime  # on a shared machine, steadier than the wall time
    stages = {k.removeprefix("seconds_"): float(v) for k, v in row.items() if k.startswith("seconds_")}
    return {
        "height": h, "width": w, "megapixels": round(h * w / 1e6, 3), "tiles": int(row["tiles"]),
        "wall_s": round(wall, 1), "seconds_per_megapixel": round(wall / (h * w / 1e6), 2),
        "cpu_s": round(cpu, 1), "cpu_seconds_per_megapixel": round(cpu / (h * w / 1e6), 2),
        "max_rss_mb": round(usage.ru_maxrss / 1024),  # Linux: kilobytes
        "stages_s": stages, "scale": row.get("scale", ""),
    }  # fmt: skip


def bench_runs(args, work: Path) -> dict:
    """The large, medium and native images through this checkout (and the baseline's, first, on
    those within ``--baseline-max-mp``)."""
    data = Path(args.data)
    sizes = {"large": args.size, "medium": args.medium, "native": None}
    images = {
        k: upscaled(data, IMAGE, v and tuple(int(n) for n in v.split("x")), work) for k, v in sizes.items()
    }
    out = {}
    repos = {"baseline": Path(args.baseline), "this": ROOT} if args.baseline else {"this": ROOT}
    for which, image in images.items():
        for name, repo in repos.items():
            mp = math.prod(cv2.imread(str(image), cv2.IMREAD_UNCHANGED).shape[:2]) / 1e6
            if name == "baseline" and mp > args.baseline_max_mp:
                out.setdefault(name, {})[which] = {"skipped": f"{mp:.1f} MP > --baseline-max-mp"}
                continue
            res = run_segment(repo, image, work / f"{name}-{which}", args.checkpoint)
            out.setdefault(name, {})[which] = res
            print(f"{name} {which} {res['width']}x{res['height']}: {res['wall_s']} s wall, {res['cpu_s']} s CPU "
                  f"({res['seconds_per_megapixel']} s/MP), peak RSS {res['max_rss_mb']} MB")  # fmt: skip
    return out


def ratios(runs: dict) -> dict:
    """Seconds per megapixel, large over native (each checkout); this over baseline (time, memory)."""
    out = {}
    for name, r in runs.items():
        for t in ("seconds_per_megapixel", "cpu_seconds_per_megapixel"):
            if t in r["large"]:
                out[f"{name}_large_over_native_{t}"] = round(r["large"][t] / r["native"][t], 3)
    for which, b in runs.get("baseline", {}).items():
        if "skipped" in b:
            continue
        a = runs["this"][which]
        out[f"{which}_wall_ratio_this_over_baseline"] = round(a["wall_s"] / b["wall_s"], 3)
        out[f"{which}_cpu_ratio_this_over_baseline"] = round(a["cpu_s"] / b["cpu_s"], 3)
        out[f"{which}_rss_ratio_this_over_baseline"] = round(a["max_rss_mb"] / b["max_rss_mb"], 3)
    return out


def load_model(checkpoint: str | None):
    if checkpoint:
        return load_wnet(checkpoint, torch.device("cpu"))[0]
    return zoo.pretrained("bsds500_cpu")


def agreement(args) -> dict:
    """Working-grid CRF labels against the whole-image dense CRF (see the module docstring)."""
    torch.set_num_threads(1)
    model, f = load_model(args.checkpoint), args.agreement_factor
    files, _ = bsds_files(args.data, "val")
    same, changed, pixels = [], [], 0
    for path in files[: args.agreement]:
        img = read_image(path, 3)
        img = cv2.resize(
            img, None, fx=args.agreement_scale, fy=args.agreement_scale, interpolation=cv2.INTER_CUBIC
        )
        img = np.clip(img, 0, 1)
        h, w = img.shape[:2]
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        labels, probs = predict_reduced(model, x, "none", 64, 2**20, 64, 1)  # full-size soft maps
        crf = CRFParams(workers=1)
        whole = dense_crf(probs[0], img, crf).argmax(0)  # (H, W)
        r = postprocess(probs[0], img, Stages(crf=crf), (), max_pixels=int(np.prod(work_shape(h, w, f))))
        small = crf_labels_at(labels[0].numpy(), block_mean(probs[0].numpy(), r.scale), r.refined, r.scale)
        same.append(float((small == whole).mean()))
        changed.append(float((whole != labels[0].numpy()).mean()))
        pixels = h * w
        print(f"{path.stem} {w}x{h} factor {r.scale}: agreement {100 * same[-1]:.2f} %, "
              f"whole-image CRF changed {100 * changed[-1]:.2f} %")  # fmt: skip
    return {
        "images": len(same), "scale": args.agreement_scale, "factor": f, "pixels_per_image_last": pixels,
        "agree_pct_mean": round(100 * float(np.mean(same)), 2), "agree_pct_min": round(100 * min(same), 2),
        "whole_crf_changed_pct_mean": round(100 * float(np.mean(changed)), 2),
        "raw_argmax_agree_pct_mean": round(100 - 100 * float(np.mean(changed)), 2),
    }  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the BSDS500 folder (images/val/101085.jpg)")
    ap.add_argument("--checkpoint", default=None, help="the W-Net (default: the shipped bsds500_cpu)")
    ap.add_argument("--baseline", default=None, help="another checkout to run first, for ratios")
    ap.add_argument("--size", default="2700x4000", help="WIDTHxHEIGHT of the large image")
    ap.add_argument("--medium", default="1080x1600", help="WIDTHxHEIGHT of the medium image")
    ap.add_argument("--baseline-max-mp", type=float, default=2.0,
                    help="the baseline skips larger images (a whole-image CRF at 10.8 MP took over 21 GB)")  # fmt: skip
    ap.add_argument("--agreement", type=int, default=0, help="val images for the CRF agreement (0: none)")
    ap.add_argument("--agreement-scale", type=float, default=3.0, help="upscaling of those images")
    ap.add_argument("--agreement-factor", type=int, default=2, help="working-grid factor for them")
    ap.add_argument("--skip-runs", action="store_true", help="only the agreement")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if args.baseline and not args.checkpoint:
        raise SystemExit("error: --baseline needs --checkpoint (an older checkout has no shipped model)")
    res: dict = {"image": f"BSDS500 val {IMAGE} upscaled to {args.size}", "torch_threads": 1}
    if not args.skip_runs:
        with tempfile.TemporaryDirectory(prefix="bench-segment-") as tmp:
            res["runs"] = bench_runs(args, Path(tmp))
        res["ratios"] = ratios(res["runs"])
        print(json.dumps(res["ratios"], indent=2))
    if args.agreement:
        res["crf_agreement"] = agreement(args)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
