import subprocess
import sys

import pytest
from helpers import ROOT

from wnet.tasks.config import Config, ConfigError, config_from_dict, config_to_dict, load_config


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
    load_config(path)


def test_run_py_reports_config_errors():
    r = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "run.py"), "model.kk=3"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "unknown config key 'model.kk'" in r.stderr
