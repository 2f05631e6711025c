"""Benchmark every supervised loss of ``wnet.losses`` against PyTorch's own cross-entropy.

    .venv/bin/python experiments/bench_losses.py                     # B=4, C=11, 128x128, 1 thread
    .venv/bin/python experiments/bench_losses.py --shape 2,4,32,32   # quicker

Each loss of ``LOSSES`` (``jaccard`` is ``iou`` under another name and is skipped) runs forward +
backward on seeded logits and a seeded target with ``ignore_index=255``, in its native mode:
multiclass (B, C, H, W) logits against (B, H, W) labels, or for binary-only losses (B, 1, H, W)
against (B, 1, H, W). The baseline is the matching PyTorch call on the same tensors,
``F.cross_entropy`` (multiclass) or ``F.binary_cross_entropy_with_logits`` (binary), forward +
backward. The two are timed alternately, ``--repeats`` pairs after one warm-up call each, and
the script reports the median CPU time per call of each and the median of the per-pair ratios,
since on a shared machine both drift together. It also records each loss's value on the seeded
input, which is deterministic (``reproduce.py --check`` compares it exactly).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as nnf

from wnet.losses import LOSSES, get_loss

ALIASES = {"jaccard"}  # the same class as another name: timing it again adds nothing
IGNORE = 255


def inputs(name: str, shape: tuple[int, int, int, int], seed: int) -> tuple[str, torch.Tensor, torch.Tensor]:
    """The loss's native mode and its seeded logits and target (every loss sees the same draws)."""
    b, c, h, w = shape
    mode = "multiclass" if "multiclass" in LOSSES[name].modes else "binary"
    g = torch.Generator().manual_seed(seed)
    if mode == "multiclass":
        x = torch.randn(b, c, h, w, generator=g)  # (B, C, H, W)
        t = torch.randint(0, c, (b, h, w), generator=g)  # (B, H, W)
    else:
        x = torch.randn(b, 1, h, w, generator=g)  # (B, 1, H, W)
        t = torch.randint(0, 2, (b, 1, h, w), generator=g)  # (B, 1, H, W)
    return mode, x.requires_grad_(), t


def baseline(mode: str, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """PyTorch's own loss for the mode, on the same tensors."""
    if mode == "multiclass":
        return nnf.cross_entropy(x, t, ignore_index=IGNORE)
    return nnf.binary_cross_entropy_with_logits(x, t.float())


def _cpu_time(fn, x: torch.Tensor) -> float:
    """CPU seconds of one forward + backward (all threads; less sensitive to a busy machine)."""
    x.grad = None
    c0 = time.process_time()
    fn().backward()
    return time.process_time() - c0


def time_loss(name: str, shape, repeats: int, seed: int) -> dict:
    """One loss against its baseline: both values, median CPU ms of each, median per-pair ratio."""
    mode, x, t = inputs(name, shape, seed)
    loss = get_loss(name, mode=mode, ignore_index=IGNORE)
    value, base_value = float(loss(x, t).detach()), float(baseline(mode, x, t).detach())

    def ours():
        return loss(x, t)

    def base():
        return baseline(mode, x, t)

    _cpu_time(ours, x), _cpu_time(base, x)  # warm-up: first-call allocations, scipy imports
    pairs = [(_cpu_time(ours, x), _cpu_time(base, x)) for _ in range(repeats)]
    return {
        "mode": mode,
        "value": round(value, 6),
        "baseline_value": round(base_value, 6),
        "ms": statistics.median(a for a, _ in pairs) * 1e3,
        "baseline_ms": statistics.median(b for _, b in pairs) * 1e3,
        "ratio": statistics.median(a / max(b, 1e-9) for a, b in pairs),
    }


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="4,11,128,128", help="B,C,H,W of the multiclass logits")
    ap.add_argument("--repeats", type=int, default=15, help="alternating (loss, baseline) pairs per loss")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=None, help="these losses only (default: all)")
    ap.add_argument("--json", default="", help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    try:
        shape = tuple(int(v) for v in args.shape.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1 or shape[1] < 2:
        ap.error(f"--shape: expected four positive integers B,C,H,W with C >= 2, got {args.shape!r}")
    unknown = sorted(set(args.only or ()) - set(LOSSES))
    if unknown:
        ap.error(f"--only: unknown loss(es) {unknown}; known: {sorted(LOSSES)}")
    if args.repeats < 1:
        ap.error(f"--repeats: expected a positive integer, got {args.repeats}")
    args.shape = shape
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n for n in (args.only or LOSSES) if n not in ALIASES or args.only]
    res = {
        "shape": list(args.shape),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "load_average": os.getloadavg()[0],
        "losses": {},  # timings: name -> mode, ms, baseline_ms, ratio
        "values": {},  # deterministic: name -> the loss on the seeded input
        "baseline_values": {},  # deterministic: mode -> PyTorch's loss on the same input
    }
    print("| loss | mode | value | ms | baseline ms | ratio |\n|---|---|---|---|---|---|")
    for name in names:
        r = time_loss(name, args.shape, args.repeats, args.seed)
        res["values"][name] = r.pop("value")
        res["baseline_values"][r["mode"]] = r.pop("baseline_value")
        res["losses"][name] = r
        print(
            f"| `{name}` | {r['mode']} | {res['values'][name]:.4f} | {r['ms']:.1f} | {r['baseline_ms']:.1f} | {r['ratio']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
