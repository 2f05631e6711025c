"""The figures of docs/model_card.md, rendered from the shipped weights file and the results files.

The card's prose is written by hand; each block between ``<!-- card:NAME -->`` and
``<!-- /card:NAME -->`` is generated (:func:`render`; ``experiments/reproduce.py`` calls it after
every refresh, ``--render`` alone too), so no measured number is typed in:

* ``model``: what the file holds and what trained it (its ``config`` and ``provenance``);
* ``scores``: the BSDS500 test scores of that run, seed 0's rows of ``docs/results/bsds500_cpu.csv``,
  one row per post-processing;
* ``val5``: the file's own scores on the first 5 val images (``docs/results/bsds500_cpu_val5.csv``),
  which ``tests/test_pretrained.py`` reproduces from the shipped file.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from wnet import zoo
from wnet.bsds.table import COLUMNS, PUBLISHED, markdown_rows
from wnet.tasks.results import RESULTS, ROOT, seed_sitting

CARD = ROOT / "docs" / "model_card.md"
NAME = "bsds500_cpu"
VAL5 = "bsds500_cpu_val5"  # docs/results/<VAL5>.csv


def computed_rows(path: Path, seed: str = "0") -> dict[str, dict[str, float]]:
    """``{method: {column: value}}`` of the computed W-Net rows of one seed in a results CSV."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [r for r in rows if r["source"] == "computed" and r["method"].startswith("W-Net")]
    return {r["method"]: {c: float(r[c]) for c in COLUMNS} for r in keep if r.get("seed", seed) == seed}


def model_block(weights: Path) -> str:
    """A table of what the weights file holds and what trained it."""
    model, info = zoo.load_weights_file(weights)
    m, p = info["model"], info["provenance"]
    params = sum(t.numel() for t in model.parameters())
    widths = "-".join(str(m["base_width"] * 2**i) for i in range(5))
    rel = weights.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights
    rows = [
        ("file", f"`{rel}`, {weights.stat().st_size / 1e6:.2f} MB, read with `torch.load(..., weights_only=True)`"),
        ("architecture", f"W-Net (Xia & Kulis 2017): K = {m['k']} soft classes, widths {widths}, "
         f"{'depthwise-separable ' if m['separable'] else ''}convolutions with {m['padding']} padding, "
         f"{m['in_channels']} input channels, dropout {m['dropout']}; {params:,} parameters"),
        ("training", f"`{p['config_file']}`, seed {p['seed']}, {p['steps']} steps of {p['batch_size']} "
         f"random {p['crop']} px crops (the paper's Algorithm 1: N-Cut step, then reconstruction step)"),
        ("data", f"{p['data']}, splits {' + '.join(p['splits'])}; the test split is never seen in training"),
        ("data licence", p["data_licence"]),
        ("made", f"commit {p['commit']}, {p['date']}" + (f", {p['train_time_s'] / 60:.0f} min of training" if p["train_time_s"] else "")),
    ]  # fmt: skip
    return "\n".join(["| | |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def scores_block(results: Path) -> str:
    """Seed 0's BSDS500 test rows, one per post-processing, with the published references."""
    s = seed_sitting(json.loads((results / f"{NAME}.meta.json").read_text()), 0)
    head = (
        f"BSDS500 test, 200 images, seed 0's rows of `docs/results/{NAME}.csv` (regenerated {s['date']} "
        f"at commit {s['commit']} on {s['machine']}; the other seeds and the baselines are in docs/results.md)."
    )
    return "\n".join([head, "", *markdown_rows(computed_rows(results / f"{NAME}.csv"), PUBLISHED)])


def val5_block(results: Path) -> str:
    """The shipped file's scores on the first 5 val images."""
    path = results / f"{VAL5}.csv"
    if not path.is_file():
        return "(not generated yet: `python experiments/reproduce.py --only bsds500_cpu`)"
    head = (
        f"BSDS500 val, its first 5 images, scored from the shipped file by `task=bsds` "
        f"(`docs/results/{VAL5}.csv`; `tests/test_pretrained.py` reruns it and asks for the same figures):"
    )
    return "\n".join([head, "", *markdown_rows(computed_rows(path), {})])


BLOCKS = {"model": lambda results, weights: model_block(weights), "scores": lambda r, w: scores_block(r),
          "val5": lambda r, w: val5_block(r)}  # fmt: skip


def render(card: Path = CARD, results: Path = RESULTS, weights: Path | None = None) -> str:
    """The card with every block regenerated (written back to ``card``); its text."""
    weights = weights or zoo.pretrained_path(NAME)

    def block(m: re.Match) -> str:
        name = m.group(1)
        return f"<!-- card:{name} -->\n{BLOCKS[name](results, weights)}\n<!-- /card:{name} -->"

    text = re.sub(r"<!-- card:(\w+) -->.*?<!-- /card:\1 -->", block, card.read_text(), flags=re.S)
    card.write_text(text)
    return text
