"""Runs that survive: kill -9 and SIGTERM then resume give the uninterrupted run's weights bit for
bit; runs never clobber each other; a truncated checkpoint write leaves the previous one loadable.

Each training here is a subprocess of ``experiments/run.py``, as a user or a scheduler runs it.
"""

import signal
import subprocess

import pytest
import torch
from helpers import ENV, RUN, TINY, paired_overrides, run_cli, signal_at_step, write_paired

from wnet.tasks.checkpoints import load_checkpoint, save_checkpoint


def _unsupervised(out, name, *extra):
    return [
        *TINY,
        "train.threads=1",
        f"out_dir={out}",
        f"name={name}",
        "train.iterations=24",
        "train.ckpt_every=4",
        *extra,
    ]


def _supervised(tmp_path, out, name, *extra):
    root = write_paired(tmp_path / "data", n_train=8)
    over = paired_overrides(root, out)
    return [
        *over,
        "train.threads=1",
        f"name={name}",
        "train.iterations=24",
        "train.ckpt_every=4",
        "train.eval_every=7",
        "supervised.select_fraction=0.25",  # best.pt on 2 of the 8 training images: a best-model record
        *extra,
    ]


_run = run_cli


def _interrupt(args, ckpt, sig, min_step=4):
    """Start a run, send ``sig`` once its checkpoint reaches ``min_step``; returns (returncode, stderr)."""
    proc = subprocess.Popen(
        [*RUN, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV
    )
    signal_at_step(proc, ckpt, min_step, lambda: proc.send_signal(sig))
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _assert_same_state(a, b):
    for kind in ("models", "optimizers", "schedulers"):
        assert a[kind].keys() == b[kind].keys()
    for name in a["models"]:
        for k, v in a["models"][name].items():
            assert torch.equal(v, b["models"][name][k]), f"{name}.{k} differs"
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys()
        for pid in sa:
            for k, v in sa[pid].items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(sb[pid][k])), (
                    f"optimizer {name} {pid}.{k}"
                )
    assert a["schedulers"] == b["schedulers"]
    assert a["step"] == b["step"] == 24 and a["epoch"] == b["epoch"] and a["position"] == b["position"]


@pytest.mark.parametrize(
    "task, sig, workers",
    [
        ("unsupervised", signal.SIGKILL, 0),
        ("unsupervised", signal.SIGKILL, 2),  # DataLoader workers: the per-item seeds make them irrelevant
        ("unsupervised", signal.SIGTERM, 0),
        ("supervised", signal.SIGKILL, 0),
        ("supervised", signal.SIGTERM, 0),
    ],
)
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, task, sig, workers):
    out = tmp_path / "runs"

    def args(name, *extra):
        base = _unsupervised(out, name) if task == "unsupervised" else _supervised(tmp_path, out, name)
        return [*base, f"data.num_workers={workers}", *extra]

    ref = _run(args("ref"))
    assert ref.returncode == 0, ref.stderr
    code, err = _interrupt(args("cut"), out / "cut" / "last.pt", sig)
    cut = load_checkpoint(out / "cut" / "last.pt")
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL and 4 <= cut["step"] < 24
    else:  # SIGTERM: the step in progress finishes, a checkpoint is written at the signal, exit 128 + 15
        assert code == 143, err
        assert "stopped by SIGTERM at step" in err and "resume=" in err and "Traceback" not in err
        assert 4 <= cut["step"] < 24
    again = _run(args("cut", "resume=auto"))
    assert again.returncode == 0, again.stderr
    assert f"resumed from {out / 'cut' / 'last.pt'} at step {cut['step']}" in again.stdout
    _assert_same_state(load_checkpoint(out / "ref" / "last.pt"), load_checkpoint(out / "cut" / "last.pt"))
    if task == "supervised":  # the best-model record survives the interruption too
        assert (
            load_checkpoint(out / "ref" / "last.pt")["extra"]
            == load_checkpoint(out / "cut" / "last.pt")["extra"]
        )


def test_two_runs_with_the_default_name_keep_both(tmp_path):
    out = tmp_path / "runs"
    common = [*TINY, "train.threads=1", f"out_dir={out}", "train.iterations=2"]
    first, second = _run(common), _run([*common, "train.seed=1"])
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert f"{out / 'default'} holds another run; this run is default-2" in second.stdout
    a, b = load_checkpoint(out / "default" / "last.pt"), load_checkpoint(out / "default-2" / "last.pt")
    assert a["config"]["train"]["seed"] == 0 and b["config"]["train"]["seed"] == 1
    assert b["config"]["name"] == "default-2"
    for folder in ("default", "default-2"):
        steps = [line for line in (out / folder / "log.jsonl").read_text().splitlines() if '"train"' in line]
        assert len(steps) == 2, folder  # each log holds its own run only
    third = _run([*common, "overwrite=true"])
    assert third.returncode == 0 and not (out / "default-3").exists()


def test_resume_auto_starts_fresh_then_continues(tmp_path):
    out = tmp_path / "runs"
    common = [*TINY, "train.threads=1", f"out_dir={out}", "name=job", "resume=auto"]
    first = _run([*common, "train.iterations=3"])
    assert first.returncode == 0 and "resumed" not in first.stdout
    second = _run([*common, "train.iterations=5"])
    assert second.returncode == 0 and "resumed from" in second.stdout
    assert load_checkpoint(out / "job")["step"] == 5 and not (out / "job-2").exists()


def test_a_crash_while_saving_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "models": {}, "config": {}})

    def dies_midway(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "models": {}, "config": {}})
    assert load_checkpoint(path)["step"] == 1
