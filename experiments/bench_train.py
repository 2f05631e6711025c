"""Where a W-Net training step (the paper's Algorithm 1) spends its time, and what each speed option does.

    python experiments/bench_train.py --scale quick --steps 20             # the quick default, CPU
    python experiments/bench_train.py --scale cpu --steps 10               # bsds500_cpu.yaml's sizes
    python experiments/bench_train.py --scale paper --steps 3 --batch 2    # paper-scale widths and crops
    python experiments/bench_train.py --device cuda --scale paper          # on a GPU (bf16 autocast)
    python experiments/bench_train.py --ddp                                # 2 processes vs 1 (torchrun, CPU)

Step breakdown (seconds per step, measured phase by phase with the device synchronised):
data loading, U_Enc forward, soft N-Cut forward + backward (to the soft maps), U_Enc backward,
U_Enc optimiser step, then the reconstruction step (U_Enc + U_Dec forward and backward) and its
optimiser step. Options: ``channels_last`` memory format, ``torch.compile`` of the two U-Nets,
DataLoader workers (with pinned memory on CUDA), bf16 autocast (CUDA). Each is reported as
images/s and as a ratio to the plain configuration measured in the same run.

``--ddp`` runs ``experiments/run.py`` on the quick default with ``train.threads=1``, once as one
process and once under ``torchrun --nproc_per_node=2`` at the same per-process batch, and prints
the ratio of images/s read from the runs' logs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from wnet.inference import autocast
from wnet.ncut import image_ncut_loss
from wnet.tasks.build import build_unlabelled, build_wnet
from wnet.tasks.loaders import train_loader
from wnet.tasks.validate import load_config

SCALES = {
    "quick": [],  # K = 8, widths 8-128, 64 px, batch 8 (the defaults)
    "cpu": ["model.k=64", "data.image_size=96"],  # bsds500_cpu.yaml: K = 64, widths 8-128, 96 px, batch 8
    "paper": [
        "model.k=64",
        "model.base_width=64",
        "model.dropout=0.65",
        "data.image_size=224",
        "train.batch_size=10",
    ],
}
RUN = Path(__file__).resolve().parent / "run.py"


def _sync(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def make_parts(cfg, device, channels_last: bool, compile_: bool):
    model = build_wnet(cfg.model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    enc, dec = (torch.compile(u) if compile_ else u for u in (model.u_enc, model.u_dec))
    opt_enc = torch.optim.SGD(model.u_enc.parameters(), lr=1e-3, momentum=0.9)
    opt_all = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return model, enc, dec, opt_enc, opt_all


def timed_step(cfg, parts, batch_iter, device, channels_last: bool) -> dict[str, float]:
    """One Algorithm 1 step, phase by phase; returns seconds per phase."""
    model, enc, dec, opt_enc, opt_all = parts
    amp = cfg.train.amp
    t0 = _sync(device)
    x = next(batch_iter)["image"].to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    t1 = _sync(device)
    opt_enc.zero_grad(set_to_none=True)
    with autocast(device, amp):
        probs = torch.softmax(model.encode(x, enc), dim=1).float()
    t2 = _sync(device)
    leaf = probs.detach().requires_grad_()
    n = cfg.ncut
    j = image_ncut_loss(leaf, x, n.radius, n.sigma_x, n.sigma_i, n.features)
    j.backward()
    t3 = _sync(device)
    probs.backward(leaf.grad)
    t4 = _sync(device)
    opt_enc.step()
    t5 = _sync(device)
    opt_all.zero_grad(set_to_none=True)
    with autocast(device, amp):
        _, recon = model(x, enc, dec)
    F.mse_loss(recon.float(), x).backward()
    t6 = _sync(device)
    opt_all.step()
    t7 = _sync(device)
    names = [
        "data",
        "enc_forward",
        "ncut_fwd_bwd",
        "enc_backward",
        "enc_optimiser",
        "recon_fwd_bwd",
        "all_optimiser",
    ]
    return dict(zip(names, [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6], strict=True))


def measure(cfg, device, steps: int, warmup: int, channels_last=False, compile_=False, workers=0) -> dict:
    """Mean seconds per phase over ``steps`` steps after ``warmup``, and images/s."""
    torch.manual_seed(0)
    cfg.data.num_workers = workers
    loader = train_loader(cfg, build_unlabelled(cfg)[0])
    if device.type == "cuda":
        loader.pin_memory = True
    parts = make_parts(cfg, device, channels_last, compile_)

    def forever():
        while True:
            yield from loader

    it = forever()
    for _ in range(warmup):
        timed_step(cfg, parts, it, device, channels_last)
    rows = [timed_step(cfg, parts, it, device, channels_last) for _ in range(steps)]
    phases = {k: sum(r[k] for r in rows) / steps for k in rows[0]}
    step_s = sum(phases.values())
    return {"phases": phases, "step_s": step_s, "images_per_s": cfg.train.batch_size / step_s}


def options(device: torch.device, compile_ok: bool) -> dict[str, dict]:
    out = {"plain": {}, "channels_last": {"channels_last": True}}
    if compile_ok:
        out |= {
            "compile": {"compile_": True},
            "channels_last+compile": {"channels_last": True, "compile_": True},
        }
    out["workers=2"] = {"workers": 2}
    return out


def bench_scale(args, scale: str) -> dict:
    device = torch.device(args.device)
    over = [*SCALES[scale], f"train.amp={'bf16' if device.type == 'cuda' else 'none'}"]
    if args.batch:
        over.append(f"train.batch_size={args.batch}")
    cfg = load_config(None, over)
    res = {}
    every = options(device, not args.no_compile)
    chosen = {k: v for k, v in every.items() if not args.options or k in ("plain", *args.options)}
    for name, kw in chosen.items():
        res[name] = measure(cfg, device, args.steps, args.warmup, **kw)
        ratio = res[name]["images_per_s"] / res["plain"]["images_per_s"]
        print(
            f"  {scale} {name:22s} {res[name]['images_per_s']:8.2f} img/s  x{ratio:.2f} vs plain", flush=True
        )
    return {
        "batch": cfg.train.batch_size,
        "k": cfg.model.k,
        "width": cfg.model.base_width,
        "size": cfg.data.image_size,
        "options": res,
    }


def _images_per_s(log: Path, batch: int, world: int) -> float:
    """Images/s between the first and the last training log record (the steps after the first window)."""
    rec = [json.loads(line) for line in log.read_text().splitlines()]
    train = [r for r in rec if r["split"] == "train"]
    first, last = train[0], train[-1]
    return (last["step"] - first["step"]) * batch * world / (last["time"] - first["time"])


def bench_ddp(args) -> dict:
    """One process vs ``torchrun --nproc_per_node=2``, both with one thread per process, same per-process batch."""
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    common = [
        "train.threads=1",
        f"train.iterations={args.ddp_steps}",
        "train.log_every=10",
        "train.ckpt_every=100000",
    ]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, launcher, world in (
            ("1 process", [sys.executable], 1),
            (
                "2 processes (torchrun)",
                [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
                2,
            ),
        ):
            cmd = [*launcher, str(RUN), *common, f"out_dir={tmp}", f"name={world}"]
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise SystemExit(f"{name} failed:\n{r.stderr[-3000:]}")
            out[name] = _images_per_s(Path(tmp) / str(world) / "log.jsonl", 8, world)
            print(f"  {name:24s} {out[name]:8.2f} img/s", flush=True)
    out["ratio"] = out["2 processes (torchrun)"] / out["1 process"]
    print(f"  DDP speed-up on this machine: x{out['ratio']:.2f} (images/s, 2 processes vs 1)")
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=["quick", "cpu", "paper", "all"], default="quick")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    ap.add_argument(
        "--batch", type=int, default=0, help="override the scale's batch (paper scale on a CPU: 2)"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile options")
    ap.add_argument("--options", nargs="+", default=None, help="only these (plain is always measured first)")
    ap.add_argument("--ddp", action="store_true", help="only the 2-process vs 1-process comparison")
    ap.add_argument("--ddp-steps", type=int, default=60)
    ap.add_argument("--json", default="", help="write the figures to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    res = {"device": args.device, "threads": torch.get_num_threads()}
    if args.ddp:
        res["ddp"] = bench_ddp(args)
    else:
        for scale in ("quick", "cpu", "paper") if args.scale == "all" else (args.scale,):
            res[scale] = bench_scale(args, scale)
            print(f"  {scale} step breakdown (plain, s/step): " + ", ".join(
                f"{k} {v:.4f}" for k, v in res[scale]["options"]["plain"]["phases"].items()
            ))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
