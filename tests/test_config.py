import subprocess
import sys

import pytest
from helpers import ROOT

from wnet.tasks.config import Config
from wnet.tasks.errors import ConfigError
from wnet.tasks.keys import config_from_dict, config_to_dict
from wnet.tasks.validate import load_config


def test_defaults_are_the_quick_run():
    cfg = load_config()
    assert cfg.task == "unsupervised" and cfg.data.name == "procedural"
    assert cfg.ncut.radius == 5 and cfg.ncut.sigma_x == 4.0 and cfg.ncut.sigma_i == 10.0


def test_yaml_then_cli_precedence(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  k: 16\n  base_width: 8\ntrain:\n  iterations: 7\n")
    cfg = load_config(p, ["model.k=32", "optim.lr_steps=[10, 20]", "wandb.mode=disabled", "ncut.sigma_i=12"])
    assert cfg.model.k == 32  # CLI wins over YAML
    assert cfg.model.base_width == 8  # YAML wins over default
    assert cfg.train.iterations == 7
    assert cfg.optim.lr_steps == [10, 20]
    assert cfg.ncut.sigma_i == 12.0 and isinstance(cfg.ncut.sigma_i, float)  # int accepted for float


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["model.kk=3"])
    msg = str(e.value)
    assert "model.kk" in msg and "base_width" in msg and "dropout" in msg
    with pytest.raises(ConfigError, match="valid keys there: task, name"):
        load_config(None, ["nope=1"])


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.k=abc", "expected an integer"),
        ("model.k=3.5", "expected an integer"),
        ("optim.lr=fast", "expected a number"),
        ("train.iterations=true", "expected an integer"),
        ("data.flip=1", "expected true/false"),
        ("optim.lr_steps=5", "expected a list"),
        ("optim.lr_steps=[a]", "expected an integer"),
        ("model=3", "is a section"),
        ("model.k.x=3", "is a value, not a section"),
        ("k", "key=value"),
    ],
)
def test_type_errors(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(None, [override])


def test_yaml_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  iterationz: 3\n")
    with pytest.raises(ConfigError, match="bad.yaml.*iterationz"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_roundtrip_dict():
    cfg = load_config(None, ["model.k=9", "supervised.loss={dice: 1.0, ce: 0.5}"])
    assert cfg.supervised.loss == {"dice": 1.0, "ce": 0.5}
    again = config_from_dict(config_to_dict(cfg))
    assert again == cfg and isinstance(again, Config)


@pytest.mark.parametrize(
    "path", sorted((ROOT / "experiments" / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_configs_load(path):
    cfg = load_config(
        path, ["data.root=/data"]
    )  # every shipped config takes its data folder on the command line
    assert cfg.data.root == "/data"
    with pytest.raises(ConfigError, match="data.root"):
        load_config(path)


@pytest.mark.slow  # subprocesses; the config checks themselves run in process above
def test_run_py_reports_config_errors(tmp_path):
    r = subprocess.run(  # from another working directory: the installed package is found, no import-path edits
        [sys.executable, str(ROOT / "experiments" / "run.py"), "model.kk=3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2
    assert "unknown config key 'model.kk'" in r.stderr


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["data.name=paired", "data.classes_file=camvid"], 11),  # the class file's ignore_index
        (["data.name=paired", "data.classes_file=camvid", "data.ignore_index=-1"], None),  # -1: none
        (["data.name=paired", "data.classes_file=camvid", "data.ignore_index=3"], 3),
        (["data.name=paired", "data.classes_file=isbi"], None),  # isbi declares none
        (["data.name=voc"], 255),
        (["data.name=paired"], None),
    ],
)
def test_ignore_index_comes_from_the_class_file_unless_given(overrides, expected):
    from wnet.tasks.build import ignore_index

    assert ignore_index(load_config(None, [*overrides, "data.root=/data"])) == expected
