"""Each choice of the config has one name -> builder table, read by validation and building alike:
every name the table holds passes validation and builds; any other name is refused with the table's
names listed."""

import re

import numpy as np
import pytest
import torch
from helpers import TINY

from wnet.baselines import BASELINES, baseline_prediction
from wnet.postprocess import HIERARCHIES, CRFParams, Stages, postprocess
from wnet.tasks import build
from wnet.tasks.build import DATASETS, LABELLED, OPTIMISERS, SCHEDULERS, build_optimizer, build_scheduler
from wnet.tasks.cli import TASKS
from wnet.tasks.errors import ConfigError
from wnet.tasks.steps import TRAIN_MODES
from wnet.tasks.unsupervised import build_parts
from wnet.tasks.validate import load_config


def _refused(overrides, key, table, tasks=None, value="nope"):
    with pytest.raises(
        ConfigError,
        match=re.escape(f"'{key}': '{value}' is not allowed; expected one of {', '.join(table)}") + "$",
    ):
        load_config(None, overrides, tasks=tasks)


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_name_validates_and_has_one_builder(name, tmp_path):
    task = "supervised" if name in LABELLED else "unsupervised"
    cfg = load_config(None, [f"task={task}", f"data.name={name}", f"data.root={tmp_path}"])
    kind = DATASETS[cfg.data.name]
    assert (kind.labelled is not None) == (name in LABELLED) != (kind.unlabelled is not None)


def test_datasets_outside_the_table_are_refused_and_the_table_builds():
    _refused(["data.name=nope"], "data.name", DATASETS)
    _refused(["task=supervised", "data.name=procedural"], "data.name", LABELLED, value="procedural")
    train, held = build.build_unlabelled(load_config(None, TINY))  # procedural: the table's builder
    assert len(train) == 8 and len(held) == 2


@pytest.mark.parametrize("name", OPTIMISERS)
@pytest.mark.parametrize("schedule", SCHEDULERS)
def test_every_optimiser_and_schedule_validates_and_builds(name, schedule):
    cfg = load_config(None, [f"optim.name={name}", f"optim.schedule={schedule}", "optim.lr_steps=[2]"])
    p = torch.nn.Parameter(torch.ones(1))
    opt = build_optimizer(cfg.optim, [p])
    assert type(opt).__name__.lower() == name
    sched = build_scheduler(cfg.optim, opt, 4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = {
        "step": [3e-3, 3e-3, 3e-4, 3e-4],
        "cosine": [3e-3 * (1 + np.cos(np.pi * t / 4)) / 2 for t in range(4)],
    }
    np.testing.assert_allclose(lrs, expected[schedule], rtol=1e-9)


def test_optimisers_and_schedules_outside_the_tables_are_refused():
    _refused(["optim.name=nope"], "optim.name", OPTIMISERS)
    _refused(["optim.schedule=nope"], "optim.schedule", SCHEDULERS)


@pytest.mark.parametrize("mode", TRAIN_MODES)
def test_every_train_mode_validates_and_builds_its_optimisers(mode):
    cfg = load_config(None, [*TINY, f"train.mode={mode}"])
    parts = build_parts(cfg, torch.device("cpu"))
    assert tuple(parts.optimizers) == TRAIN_MODES[mode].optimizers == tuple(parts.schedulers)
    _refused(["train.mode=nope"], "train.mode", TRAIN_MODES)


def test_every_task_is_one_entry_of_the_dispatch_table():
    for name, main in TASKS.items():
        assert main.__module__ == f"wnet.tasks.{name}" and main.__name__ == "main"
    over = ["task=supervised", "data.name=paired", "data.root=/x"]
    assert load_config(None, over, tasks=TASKS).task == "supervised"
    _refused(["task=nope"], "task", TASKS, tasks=TASKS)


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_validates_and_runs(name):
    cfg = load_config(None, ["task=bsds", "data.name=bsds500", "data.root=/x", f"bsds.baselines=[{name}]"])
    rgb = np.zeros((12, 16, 3), np.uint8)
    rgb[:, 8:] = 200  # two halves
    out = baseline_prediction(cfg.bsds.baselines[0], rgb)
    assert out.shape in ((25, 33), (len(out), 12, 16))


def test_baselines_outside_the_table_are_refused():
    _refused(
        ["task=bsds", "data.name=bsds500", "data.root=/x", "bsds.baselines=[nope]"],
        "bsds.baselines[0]",
        BASELINES,
    )


@pytest.mark.parametrize("name", HIERARCHIES)
def test_every_hierarchy_validates_and_is_built_by_the_pipeline(name):
    cfg = load_config(None, [f"ucm={name}"])
    probs = np.zeros((2, 12, 16), np.float32)
    probs[0, :, :8] = probs[1, :, 8:] = 1.0
    out = postprocess(probs, np.zeros((12, 16, 3), np.uint8), Stages(crf=CRFParams(kind="none")), (cfg.ucm,))
    ucm2 = out.ucm2[name]
    assert ucm2.shape == (25, 33) and ucm2[1::2, 16].max() > 0  # the one boundary, between columns 7 and 8
    _refused(["ucm=nope"], "ucm", HIERARCHIES)
