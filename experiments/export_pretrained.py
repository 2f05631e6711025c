"""Write a shipped weights file (wnet/weights/<name>.pt, see wnet/zoo.py) from a training checkpoint.

    python experiments/export_pretrained.py runs/reproduce/bsds500_cpu/bsds500_cpu-s0/last.pt wnet/weights/bsds500_cpu.pt

Keeps the W-Net's weights, its model config and where they came from (the config file, seed,
steps, data and its licence, the commit); drops the optimisers, RNG states and paths of the
machine that trained it. ``experiments/reproduce.py --only bsds500_cpu`` runs it on seed 0's run.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
from pathlib import Path

from wnet import zoo
from wnet.tasks.checkpoints import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DATA = {  # data.name -> what the model card says about the data and its terms of use
    "bsds500": (
        "BSDS500 (Berkeley Segmentation Dataset 500, January 2013 release)",
        "free for non-commercial research and education; cite Arbelaez, Maire, Fowlkes and Malik, "
        "TPAMI 2011, and Martin, Fowlkes, Tal and Malik, ICCV 2001",
    ),
}


def _commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def provenance(ckpt: dict, name: str, config_file: str, commit: str | None = None) -> dict:
    """What trained the weights, from the checkpoint's own config (no machine paths)."""
    cfg = ckpt["config"]
    data, licence = DATA.get(cfg["data"]["name"], (cfg["data"]["name"], "see the data set's own terms"))
    return {
        "name": name,
        "config_file": config_file,
        "seed": int(cfg["train"]["seed"]),
        "steps": int(ckpt["step"]),
        "batch_size": int(cfg["train"]["batch_size"]),
        "crop": int(cfg["data"]["image_size"]),
        "data": data,
        "splits": list(cfg["data"]["splits"]),
        "data_licence": licence,
        "train_time_s": round(float(ckpt.get("train_time", 0.0)), 1),
        "commit": commit or _commit(),
        "date": datetime.date.today().isoformat(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="a run's last.pt")
    ap.add_argument("dest", help="the weights file to write")
    ap.add_argument("--name", default="bsds500_cpu")
    ap.add_argument("--config-file", default="experiments/configs/bsds500_cpu.yaml")
    ap.add_argument(
        "--commit", default=None, help="the commit that trained it (default: this checkout's HEAD)"
    )
    args = ap.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    model = {
        k: ckpt["config"]["model"][k]
        for k in ("k", "in_channels", "base_width", "dropout", "separable", "padding")
    }
    info = provenance(ckpt, args.name, args.config_file, args.commit)
    path = zoo.save_weights(args.dest, ckpt["models"]["wnet"], model, ckpt["step"], info)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB; step {ckpt['step']}, seed {info['seed']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
