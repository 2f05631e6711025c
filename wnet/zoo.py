"""Pretrained W-Nets shipped inside the package (``wnet/weights/<name>.pt``).

    import wnet
    model = wnet.pretrained("bsds500_cpu")   # a WNet in eval mode, on the CPU

A weights file is a dict that ``torch.load(..., weights_only=True)`` reads (tensors, strings,
numbers): ``format``; ``models["wnet"]``, the W-Net's state dict; ``config["model"]``, the keyword
arguments of :class:`wnet.model.WNet` (k, in_channels, base_width, dropout, separable, padding);
``step``, the training steps; ``provenance``, what trained it (config file, seed, data, commit;
docs/model_card.md). Those are the keys of a training checkpoint that hold the weights, so
``checkpoint=wnet/weights/bsds500_cpu.pt`` works wherever a run reads a checkpoint for its weights
(``task=bsds``, ``task=segment``); it holds no optimiser state, so it cannot be resumed.
``experiments/reproduce.py --only bsds500_cpu`` writes it from the seed-0 run's ``last.pt``
(``experiments/export_pretrained.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from wnet.model import WNet

WEIGHTS = Path(__file__).resolve().parent / "weights"
FORMAT = "wnet-pretrained-1"
# name -> what it is; the file is WEIGHTS / f"{name}.pt"
PRETRAINED = {
    "bsds500_cpu": "W-Net K=64, width 8, circular padding; BSDS500 train+val, "
    "experiments/configs/bsds500_cpu.yaml, seed 0 (docs/model_card.md)",
}
KEYS = ("format", "step", "models", "config", "provenance")


def pretrained_path(name: str) -> Path:
    """The shipped file of ``name``; ValueError naming the choices for an unknown name."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; expected one of {', '.join(PRETRAINED)}")
    return WEIGHTS / f"{name}.pt"


def read_weights(path: str | Path) -> dict:
    """A weights file as its dict (``weights_only``); ValueError naming the file when it is not one."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"pretrained weights {path} not found") from None
    except Exception as e:
        raise ValueError(f"{path} is not a readable weights file ({type(e).__name__}: {e})") from None
    if not is_weights(data):
        raise ValueError(f"{path} is not a W-Net weights file (expected the keys {', '.join(KEYS)})")
    return data


def is_weights(data) -> bool:
    """Whether a loaded object is a weights file's dict (rather than a training checkpoint)."""
    return isinstance(data, dict) and data.get("format") == FORMAT and all(k in data for k in KEYS)


def load_weights_file(path: str | Path, device: str | torch.device = "cpu") -> tuple[WNet, dict]:
    """The W-Net of a weights file, in eval mode on ``device``, and the file's description
    ``{"model": WNet's arguments, "step": ..., "provenance": {...}}``."""
    data = read_weights(path)
    model = WNet(**data["config"]["model"])
    model.load_state_dict(data["models"]["wnet"])
    info = {"model": data["config"]["model"], "step": data["step"], "provenance": data["provenance"]}
    return model.to(device).eval(), info


def pretrained(name: str = "bsds500_cpu", device: str | torch.device = "cpu") -> WNet:
    """A shipped pretrained W-Net (:data:`PRETRAINED`), in eval mode on ``device``."""
    return load_weights_file(pretrained_path(name), device)[0]


def save_weights(path: str | Path, state_dict: dict, model: dict, step: int, provenance: dict) -> Path:
    """Write a weights file (atomically: a temporary name, then a rename); checks that it loads."""
    WNet(**model).load_state_dict(state_dict)  # the weights fit the architecture they claim
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": FORMAT,
        "step": int(step),
        "models": {"wnet": {k: v.detach().cpu().clone() for k, v in state_dict.items()}},
        "config": {"model": dict(model)},
        "provenance": dict(provenance),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)
    read_weights(path)
    return path
