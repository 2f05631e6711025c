"""The W&B sweep files: each is a valid sweep whose command line, expanded as ``wandb agent``
expands it, loads as a config with the swept values in place; and the metric each maximises is
a scalar the run logs."""

import shlex
from types import SimpleNamespace

import pytest
import yaml
from helpers import ROOT

from wnet.tasks.bsds import COLUMNS, log_scores
from wnet.tasks.cli import parse
from wnet.tasks.validate import load_config

SWEEPS = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))
METRICS = {"bsds/pri_ods": "bsds", "final/matched_miou": "unsupervised"}  # metric -> the task that logs it


def _sample(spec: dict):
    """One value the sweep could draw (what the agent would pass)."""
    if "values" in spec:
        return spec["values"][-1]
    if "value" in spec:
        return spec["value"]
    return (spec["min"] * spec["max"]) ** 0.5 if "log" in spec.get("distribution", "") else spec["min"]


def _agent_argv(sweep: dict, values: dict) -> list[str]:
    """The command ``wandb agent`` runs, after the program: ``${args}`` becomes ``--key=value``."""
    argv = []
    for part in sweep["command"]:
        if part == "${args}":
            argv += [f"--{k}={v}" for k, v in values.items()]
        elif part not in ("${env}", "${interpreter}", "${program}"):
            argv.append(part)
    return argv


def test_there_are_sweeps_for_the_bandwidths_and_radius_k_and_the_learning_rate():
    swept = {k for path in SWEEPS for k in yaml.safe_load(path.read_text())["parameters"]}
    assert {"ncut.sigma_i", "ncut.sigma_x", "ncut.radius", "model.k", "optim.lr"} <= swept


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_a_sweep_command_loads_with_the_swept_values(path, monkeypatch):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["program"] == "experiments/run.py" and sweep["method"] in ("bayes", "grid", "random")
    assert sweep["metric"]["goal"] == "maximize" and sweep["metric"]["name"] in METRICS
    assert (
        sweep["command"][:3] == ["${env}", "${interpreter}", "${program}"] and "${args}" in sweep["command"]
    )
    values = {k: _sample(v) for k, v in sweep["parameters"].items()}
    monkeypatch.chdir(ROOT)  # the agent runs from the repository root
    args, overrides = parse(_agent_argv(sweep, values))
    cfg = load_config(args.config, overrides)
    for key, value in values.items():
        section, name = key.split(".")
        assert getattr(getattr(cfg, section), name) == pytest.approx(value), key
    assert cfg.task == METRICS[sweep["metric"]["name"]]
    if cfg.task == "bsds":  # held out: trained on train, scored on val
        assert cfg.data.splits == ["train"] and cfg.bsds.split == "val"
    else:
        assert cfg.data.name == "paired" and cfg.data.eval_split not in cfg.data.splits
    print(shlex.join(["python", "experiments/run.py", *_agent_argv(sweep, values)]))


class _Sink:
    def __init__(self):
        self.logged, self.summarised = {}, {}

    def log(self, values, step=None):
        self.logged.update(values)

    def summary(self, values):
        self.summarised.update(values)


def test_bsds_logs_the_full_pipeline_s_scores_as_scalars():
    rows = {
        "W-Net raw (argmax)": {c: 0.1 for c in COLUMNS},
        "W-Net + CRF + hierarchy": {c: 0.5 + i / 100 for i, c in enumerate(COLUMNS)},
    }
    sink = _Sink()
    values = log_scores(SimpleNamespace(sink=sink), rows, "W-Net + CRF + hierarchy")  # as with ucm=merge
    assert sink.logged == sink.summarised == values
    assert values["bsds/pri_ods"] == 0.52 and values["bsds/sc_ods"] == 0.5  # the CRF + hierarchy row
    assert values["bsds/w-net_raw_argmax/pri_ods"] == 0.1
    assert len(values) == 3 * len(COLUMNS)
