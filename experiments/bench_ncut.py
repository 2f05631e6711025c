"""Benchmark the exact soft N-Cut loss against a straightforward ``unfold`` implementation, and
against one pass of a windowed filter.

    .venv/bin/python experiments/bench_ncut.py --threads 1     # B=4, K=64, 224x224, r=5
    .venv/bin/python experiments/bench_ncut.py --size 112      # quicker

Each method runs forward + backward in its own fresh subprocess, so its peak extra memory
can be read cleanly: on CPU the growth of the peak resident set (``ru_maxrss``) over the
resident set measured just before the first call; on CUDA ``torch.cuda.max_memory_allocated``
over the memory allocated before it. All methods see the same seeded inputs; the script
prints their loss values and relative difference, times, memory and unfold/ours ratios.
Methods: ``ours`` (``backend='auto'``: the fused C kernel on CPU when it builds), ``eager``
(``backend='eager'``: PyTorch ops only) and ``unfold``.

Then, in one more subprocess with one thread, the ratio of the N-Cut's forward + backward to
one depthwise 9x9 ``conv2d`` forward over a tensor of the same shape (groups = K), at the
reference shape B=2, K=32, 160x160, r=5 (``--ratio-shape``): the two are timed alternately,
``--ratio-repeats`` pairs, and the median of the per-pair ratios is printed (CPU time and wall
time), with the load average, since on a shared machine both drift together.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as nnf

from wnet import window_kernel
from wnet.ncut import soft_ncut_loss

METHODS = ("ours", "eager", "unfold")


def unfold_soft_ncut(probs, image, radius=5.0, sigma_x=4.0, sigma_i=10.0):
    """The textbook exact loss: unfold S into every window, weight, sum; autograd does the rest.

    Shape: probs (B, K, H, W), image (B, C, H, W). Materialises (B, K, window, H*W).
    """
    b, k, h, w = probs.shape
    p = math.ceil(radius) - 1  # largest |dy|, |dx| with dy^2 < r^2
    size = 2 * p + 1
    dy, dx = torch.meshgrid(torch.arange(-p, p + 1), torch.arange(-p, p + 1), indexing="ij")
    dist2 = (dy * dy + dx * dx).flatten().to(probs)  # (window,)
    spatial = torch.exp(-dist2 / sigma_x**2) * (dist2 < radius**2)  # (window,)
    with torch.no_grad():
        c = image.shape[1]
        f = nnf.unfold(image, size, padding=p).view(b, c, size * size, h * w)  # (B, C, window, N)
        fi2 = (f - image.flatten(2)[:, :, None]).pow(2).sum(1)  # (B, window, N)
        inside = nnf.unfold(image.new_ones(1, 1, h, w), size, padding=p)  # (1, window, N): 0 = padding
        wgt = torch.exp(-fi2 / sigma_i**2) * spatial[None, :, None] * inside  # (B, window, N)
    s_win = nnf.unfold(probs, size, padding=p).view(b, k, size * size, h * w)  # (B, K, window, N)
    ws = (s_win * wgt[:, None]).sum(2)  # (B, K, N): W S_k
    s = probs.flatten(2)  # (B, K, N)
    a = (s * ws).sum(-1)  # (B, K)
    den = (s * wgt.sum(1)[:, None]).sum(-1)  # (B, K)
    return (k - (a / den).sum(1)).mean()


def _inputs(args, device):
    g = torch.Generator().manual_seed(args.seed)
    probs = torch.randn(args.batch, args.k, args.size, args.size, generator=g).mul(3).softmax(1)
    image = torch.rand(args.batch, 3, args.size, args.size, generator=g) * 255
    return probs.to(device), image.to(device)


def _rss_now_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _eager_soft_ncut(probs, image, radius, sigma_x, sigma_i):
    return soft_ncut_loss(probs, image, radius, sigma_x, sigma_i, backend="eager")


def worker(args) -> None:
    """Time one method in this (fresh) process and print one JSON line."""
    device = torch.device(args.device)
    fn = {"ours": soft_ncut_loss, "eager": _eager_soft_ncut, "unfold": unfold_soft_ncut}[args.worker]
    probs, image = _inputs(args, device)
    probs.requires_grad_()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_now_kib() * 1024
    times, cpu_times, loss = [], [], None
    for _ in range(args.warmup + args.repeats):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        loss = fn(probs, image, args.radius, args.sigma_x, args.sigma_i)
        loss.backward()
        sync()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)  # all threads; less sensitive to a busy machine
        probs.grad = None
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base  # Linux: KiB
    timed, cpu = times[args.warmup :], cpu_times[args.warmup :]
    print(json.dumps({"loss": loss.item(), "median_s": statistics.median(timed), "min_s": min(timed),
                      "cpu_s": statistics.median(cpu), "peak_bytes": peak,
                      "kernel": window_kernel.available()}))  # fmt: skip


def ratio_worker(args) -> None:
    """N-Cut fwd+bwd against one depthwise 9x9 conv2d forward, timed alternately; one JSON line."""
    torch.set_num_threads(1)
    b, k, size = args.ratio_shape
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(args.seed)
    probs = torch.randn(b, k, size, size, generator=g).mul(3).softmax(1).to(device).requires_grad_()
    image = (torch.rand(b, 3, size, size, generator=g) * 255).to(device)
    x = torch.rand(b, k, size, size, generator=g).to(device)
    kernel = torch.randn(k, 1, 9, 9, generator=g).to(device)  # depthwise 9x9: 81 taps per output

    def conv():
        nnf.conv2d(x, kernel, padding=4, groups=k)

    def ncut(backend):
        def step():
            soft_ncut_loss(probs, image, args.radius, args.sigma_x, args.sigma_i, backend=backend).backward()
            probs.grad = None

        return step

    fns = {"conv": conv, "ours": ncut("auto"), "eager": ncut("eager")}
    if not args.ratio_eager:
        del fns["eager"]
    times = {name: ([], []) for name in fns}  # (CPU, wall)
    for i in range(args.warmup + args.ratio_repeats):
        for name, fn in fns.items():
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync()
            if i >= args.warmup:
                times[name][0].append(time.process_time() - c0)
                times[name][1].append(time.perf_counter() - t0)
    out = {"load": os.getloadavg(), "kernel": window_kernel.available()}
    for name in fns:
        cpu, wall = times[name]
        out[name] = {"cpu_ms": statistics.median(cpu) * 1e3, "wall_ms": statistics.median(wall) * 1e3,
                     "min_cpu_ms": min(cpu) * 1e3}  # fmt: skip
        if name != "conv":
            conv_cpu, conv_wall = times["conv"]
            out[name]["ratio_cpu"] = statistics.median(c / d for c, d in zip(cpu, conv_cpu, strict=True))
            out[name]["ratio_wall"] = statistics.median(c / d for c, d in zip(wall, conv_wall, strict=True))
            out[name]["ratio_min_cpu"] = min(cpu) / min(conv_cpu)
    print(json.dumps(out))


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--size", type=int, default=224, help="square image side, pixels")
    ap.add_argument("--radius", type=float, default=5.0)
    ap.add_argument("--sigma-x", type=float, default=4.0)
    ap.add_argument("--sigma-i", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3, help="timed forward+backward passes (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="ours,unfold", help="comma-separated subset of: ours, eager, unfold")
    ap.add_argument("--force", action="store_true", help="run unfold even if it may not fit in memory")
    ap.add_argument("--ratio-shape", type=lambda t: tuple(int(v) for v in t.split(",")), default=(2, 32, 160),
                    help="B,K,SIZE of the N-Cut vs depthwise-conv ratio (default 2,32,160)")  # fmt: skip
    ap.add_argument("--ratio-repeats", type=int, default=15, help="alternating conv/N-Cut pairs timed")
    ap.add_argument("--no-ratio-eager", dest="ratio_eager", action="store_false",
                    help="leave the eager backend out of the ratio measurement")  # fmt: skip
    ap.add_argument("--no-ratio", dest="ratio", action="store_false", help="skip the ratio measurement")
    ap.add_argument("--json", default="", help="write the figures to this JSON file")
    ap.add_argument("--worker", choices=METHODS + ("ratio",), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _run_methods(args, methods: list[str]) -> dict:
    """Each method in a fresh process (so peak memory is its own); prints and returns the figures."""
    res = {}
    for m in methods:
        cmd = [sys.executable, __file__, "--worker", m] + sys.argv[1:]
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if out.returncode != 0:
            raise SystemExit(f"{m} worker failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
        res[m] = r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{m:>7}: loss {r['loss']:.8f}  fwd+bwd wall median {r['median_s'] * 1e3:8.1f} ms "
              f"(min {r['min_s'] * 1e3:8.1f}), CPU time median {r['cpu_s'] * 1e3:8.1f} ms, "
              f"peak extra memory {r['peak_bytes'] / 2**20:8.1f} MiB")  # fmt: skip
    return res


def _compare(res: dict) -> None:
    if "ours" in res:
        print(
            f"   ours = backend 'auto': {'fused C kernel' if res['ours']['kernel'] else 'eager (no kernel)'}"
        )
    if "ours" in res and "unfold" in res:
        o, u = res["ours"], res["unfold"]
        res["unfold_over_ours"] = {"wall": u["median_s"] / o["median_s"], "cpu": u["cpu_s"] / o["cpu_s"],
                                   "memory": u["peak_bytes"] / max(o["peak_bytes"], 1)}  # fmt: skip
        print(f"loss rel diff {abs(o['loss'] - u['loss']) / abs(u['loss']):.2e}")
        print(
            "unfold/ours: wall time x{wall:.1f}, CPU time x{cpu:.1f}, peak extra memory x{memory:.1f}".format(
                **res["unfold_over_ours"]
            )
        )
    if "ours" in res and "eager" in res:
        o, e = res["ours"], res["eager"]
        print(f"eager/ours: wall time x{e['median_s'] / o['median_s']:.2f}, CPU time x{e['cpu_s'] / o['cpu_s']:.2f}, "
              f"loss rel diff {abs(o['loss'] - e['loss']) / abs(e['loss']):.2e}")  # fmt: skip


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.worker == "ratio":
        return ratio_worker(args)
    if args.worker:
        return worker(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"--methods: unknown method {m!r}; choose from {METHODS}")
    window = (2 * math.ceil(args.radius) - 1) ** 2
    need = 3 * args.batch * args.k * window * args.size**2 * 4  # unfolded S, the product, its gradient
    if args.device == "cpu" and "unfold" in methods and not args.force and need > 0.8 * _mem_available():
        raise SystemExit(
            f"unfold needs about {need / 2**30:.1f} GiB but only {_mem_available() / 2**30:.1f} GiB is "
            "available; use a smaller --size/--k, or --force"
        )
    print(f"B={args.batch} K={args.k} {args.size}x{args.size} r={args.radius} sigma_x={args.sigma_x} "
          f"sigma_i={args.sigma_i} device={args.device} threads={args.threads or torch.get_num_threads()} "
          f"torch={torch.__version__}")  # fmt: skip
    res = _run_methods(args, methods)
    _compare(res)
    if args.ratio:
        res["ratio"] = _print_ratio(args)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


def _print_ratio(args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "ratio"] + sys.argv[1:]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        raise SystemExit(f"ratio worker failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    b, k, size = args.ratio_shape
    c = r["conv"]
    print(f"N-Cut fwd+bwd vs one depthwise 9x9 conv2d forward on ({b}, {k}, {size}, {size}), r={args.radius}, "
          f"1 thread, median of {args.ratio_repeats} alternating pairs (load average "
          f"{' '.join(f'{v:.2f}' for v in r['load'])}):")  # fmt: skip
    print(f"   conv: CPU {c['cpu_ms']:.1f} ms (min {c['min_cpu_ms']:.1f}), wall {c['wall_ms']:.1f} ms")
    for name in ("ours", "eager"):
        if name in r:
            n = r[name]
            label = f"{name} ({'kernel' if r['kernel'] else 'eager'})" if name == "ours" else name
            print(f"   {label}: CPU {n['cpu_ms']:.1f} ms (min {n['min_cpu_ms']:.1f}), wall {n['wall_ms']:.1f} ms; "
                  f"ratio to conv: CPU x{n['ratio_cpu']:.2f}, wall x{n['ratio_wall']:.2f}, "
                  f"min/min CPU x{n['ratio_min_cpu']:.2f}")  # fmt: skip
    return r


if __name__ == "__main__":
    main()
