"""What a run prints before it starts: a one-screen summary of the config (the whole with
--verbose), and the W&B status as it is (online, offline or off)."""

import pytest
from helpers import ROOT, TINY, run_cli

from wnet.tasks.cli import config_summary, run
from wnet.tasks.config import Config
from wnet.tasks.errors import InputError

BSDS_CPU = str(ROOT / "experiments" / "configs" / "bsds500_cpu.yaml")


def _first_screen(capsys, *extra) -> str:
    with pytest.raises(InputError):  # stops at the (missing) input, after the first screen
        run(
            [
                "--config",
                BSDS_CPU,
                "task=segment",
                "segment.input=/no/such/folder",
                "segment.output=o",
                *extra,
            ]
        )
    return capsys.readouterr().out


def test_the_summary_names_what_differs_from_the_defaults_on_one_screen(capsys):
    out = _first_screen(capsys)
    lines = out.splitlines()
    assert len(lines) <= 12 and max(map(len, lines)) <= 110, out
    assert lines[0].startswith("config: task=segment; 19 values differ from the defaults:")
    for item in (
        "model.k=64",
        "model.padding=circular",
        "data.splits=[train,val]",
        "segment.input=/no/such/folder",
    ):
        assert item in out, item
    assert "model.base_width" not in out  # 8 is the default
    assert "--verbose prints it" in lines[-1] and "sxy_bilateral" not in out


def test_verbose_prints_the_whole_resolved_config(capsys):
    out = _first_screen(capsys, "--verbose")
    assert (
        out.startswith("resolved config:\n") and "sxy_bilateral: 80.0" in out and len(out.splitlines()) > 100
    )


def test_a_default_config_differs_in_nothing():
    assert (
        config_summary(Config()).splitlines()[0]
        == "config: task=unsupervised; 0 values differ from the defaults:"
    )


@pytest.mark.slow  # starts an offline W&B run: half a minute on a busy machine
@pytest.mark.parametrize("mode, shown", [("offline", "wandb: offline"), ("disabled", "wandb: off")])
def test_the_status_line_says_what_w_and_b_does(tmp_path, mode, shown):
    r = run_cli([*TINY, f"wandb.mode={mode}", "train.iterations=1", "train.threads=1", f"out_dir={tmp_path}"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert any(line.endswith(shown) for line in r.stdout.splitlines() if line.startswith("run folder:")), (
        r.stdout
    )
