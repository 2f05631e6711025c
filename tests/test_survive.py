"""Runs that survive: kill -9 and SIGTERM then resume give the uninterrupted run's weights bit for
bit; runs never clobber each other; a failed checkpoint write (a full disk) leaves the previous one
loadable and no temp file.

Each training here is a subprocess of ``experiments/run.py``, as a user or a scheduler runs it, and
is signalled as SLURM and ``kill -- -PGID`` signal it: the whole process group, DataLoader workers
included.
"""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import ENV, RUN, TINY, paired_overrides, run_cli, signal_during_training, write_paired

from wnet.tasks import cli
from wnet.tasks.checkpoints import load_checkpoint, save_checkpoint
from wnet.tasks.errors import Interrupted, StorageError
from wnet.tasks.runtime import Run, _signals


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
    """Start a run in its own process group; send ``sig`` to the whole group (the run and its
    DataLoader workers) once its checkpoint reaches ``min_step``, while it trains (its 24 steps);
    returns (returncode, stderr)."""

    def start():
        return subprocess.Popen(
            [*RUN, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
            start_new_session=True,
        )  # fmt: skip

    return signal_during_training(start, ckpt, min_step, 24, sig)


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


SLOW = pytest.mark.slow  # the representative case of each kind stays in the default suite


@pytest.mark.parametrize(
    "task, sig, workers",
    [
        pytest.param("unsupervised", signal.SIGKILL, 0, marks=SLOW),
        # DataLoader workers: the per-item seeds make them irrelevant
        pytest.param("unsupervised", signal.SIGKILL, 2, marks=SLOW),
        pytest.param("unsupervised", signal.SIGTERM, 0, marks=SLOW),
        # workers die of a SIGTERM to the group unless they ignore it: the main process then raised
        # "DataLoader worker ... is killed by signal" mid-step, exit 1, no last.pt (issue 29)
        ("unsupervised", signal.SIGTERM, 2),
        pytest.param("supervised", signal.SIGKILL, 0, marks=SLOW),
        pytest.param("supervised", signal.SIGTERM, 0, marks=SLOW),
        pytest.param("supervised", signal.SIGTERM, 2, marks=SLOW),
        pytest.param("unsupervised", signal.SIGINT, 2, marks=SLOW),  # Ctrl-C reaches the group too
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
    else:  # SIGTERM / SIGINT: the step in progress finishes, a checkpoint is written, exit 128 + 15 / 2
        assert code == 128 + sig, err
        assert "resume=" in err and "Traceback" not in err and "killed by signal" not in err
        reached = int(re.search(rf"stopped by {sig.name} at step (\d+)", err).group(1))
        assert 4 <= reached < 24 and cut["step"] == reached  # last.pt at the step reached
    again = _run(args("cut", "resume=auto"))
    assert again.returncode == 0, again.stderr
    assert f"resumed from {out / 'cut' / 'last.pt'} at step {cut['step']}" in again.stdout
    _assert_same_state(load_checkpoint(out / "ref" / "last.pt"), load_checkpoint(out / "cut" / "last.pt"))
    if task == "supervised":  # the best-model record survives the interruption too
        assert (
            load_checkpoint(out / "ref" / "last.pt")["extra"]
            == load_checkpoint(out / "cut" / "last.pt")["extra"]
        )


@SLOW  # two subprocess runs; tests/test_owned_folders.py covers the folder rules in process
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


@SLOW  # four subprocess runs; resume=auto's refusal of a live folder stays in tests/test_owned_folders.py
def test_resume_auto_starts_fresh_then_continues(tmp_path):
    out = tmp_path / "runs"
    common = [*TINY, "train.threads=1", f"out_dir={out}", "name=job", "resume=auto"]
    first = _run([*common, "train.iterations=3"])
    assert first.returncode == 0 and "resumed" not in first.stdout
    second = _run([*common, "train.iterations=5"])
    assert second.returncode == 0 and "resumed from" in second.stdout
    assert load_checkpoint(out / "job")["step"] == 5 and not (out / "job-2").exists()


def _no_space_after(monkeypatch, n: int) -> None:
    """``torch.save`` writes half a file and fails with ENOSPC from its ``n+1``-th call on."""
    real, calls = torch.save, []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) <= n:
            return real(obj, f, *a, **k)
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_while_saving_leaves_the_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "models": {}, "config": {}})
    _no_space_after(monkeypatch, 0)
    with pytest.raises(
        StorageError, match=f"cannot write checkpoint {path}: No space left on device; the previous"
    ):
        save_checkpoint(path, {"step": 2, "models": {}, "config": {}})
    assert load_checkpoint(path)["step"] == 1 and sorted(tmp_path.iterdir()) == [path]


def test_a_full_disk_mid_run_is_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    """The run as ``experiments/run.py`` runs it (in this process, to inject the fault): the second
    checkpoint meets a full disk."""
    _no_space_after(monkeypatch, 1)
    args = [
        *TINY,
        "train.threads=1",
        f"out_dir={tmp_path}",
        "name=full",
        "train.iterations=9",
        "train.ckpt_every=4",
    ]
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert exit_.value.code == 3 and len(errors) == 1 and "Traceback" not in err
    last = tmp_path / "full" / "last.pt"
    assert errors[0] == (
        f"error: cannot write checkpoint {last}: No space left on device; the previous one is unchanged"
    )
    assert load_checkpoint(last)["step"] == 4  # the last good one, loadable
    assert not (tmp_path / "full" / "last.pt.tmp").exists()


def _unshare_works() -> bool:
    probe = ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]
    return shutil.which("unshare") is not None and subprocess.run(probe, capture_output=True).returncode == 0


@SLOW
@pytest.mark.skipif(sys.platform != "linux", reason="tmpfs and mount namespaces are Linux's")
def test_a_real_full_disk_and_a_read_only_disk(tmp_path):
    """A tmpfs (in a private mount namespace) that holds one checkpoint but not the temp file of the
    next one; and a read-only one. Skipped where unprivileged mount namespaces are not allowed."""
    if not _unshare_works():
        pytest.skip("unshare -rm cannot mount a tmpfs here (no user namespaces)")
    args = [*TINY, "train.threads=1", "name=full", "train.iterations=9", "train.ckpt_every=4"]
    probe = run_cli([*args, f"out_dir={tmp_path / 'probe'}", "train.iterations=4"])
    assert probe.returncode == 0, probe.stderr
    size = (tmp_path / "probe" / "full" / "last.pt").stat().st_size
    disk, ro = tmp_path / "disk", tmp_path / "ro"
    disk.mkdir(), ro.mkdir()
    cmd = " ".join(map(str, [*RUN, *args]))
    script = (
        f"mount -t tmpfs -o size={size + size // 2} tmpfs {disk} && mount -t tmpfs -o ro tmpfs {ro} && "
        f"{cmd} out_dir={disk}/runs; echo full=$?; ls -a {disk}/runs/full; "
        f'{sys.executable} -c \'import torch; print("step", torch.load("{disk}/runs/full/last.pt")["step"])\'; '
        f"{cmd} out_dir={ro}/runs; echo ro=$?"
    )
    r = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=ENV, timeout=600
    )
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert "full=3" in r.stdout and "ro=3" in r.stdout and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert len(errors) == 2 and "No space left on device" in errors[0] and f"{disk}/runs/full" in errors[0]
    assert errors[1] == f"error: cannot write {ro}/runs/full: Read-only file system"
    assert "step 4" in r.stdout and "last.pt.tmp" not in r.stdout  # the last good checkpoint, no temp file


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tmp_path, capsys):
    """The handler itself: the first SIGINT asks for a checkpoint after the step, the second raises
    :class:`Interrupted` (exit code 130, one line) wherever the run is."""
    run = Run(None, tmp_path, torch.device("cpu"), None, None)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest was started in the background (nohup, &)
    with _signals(run):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs between bytecodes
        assert run.stop_signal == signal.SIGINT
        # the message fits evaluation too, where the run stops after its batch with nothing to save
        said = capsys.readouterr().out
        assert "training step (with a checkpoint) or evaluation batch; Ctrl-C again stops at once" in said
        with pytest.raises(Interrupted, match="stopped at once by a second Ctrl-C") as e:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert e.value.exit_code == 130 and "no checkpoint was written" in str(e.value)
    assert signal.getsignal(signal.SIGINT) is before  # restored


@SLOW
def test_a_second_ctrl_c_in_a_training_subprocess(tmp_path):
    """Two Ctrl-C 0.2 s apart, while the run scores its held-out images before the first step."""
    args = [*TINY, "train.threads=1", f"out_dir={tmp_path}", "name=c", "data.num_eval_images=400"]
    proc = subprocess.Popen(
        [*RUN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        start_new_session=True,
    )  # fmt: skip
    for line in proc.stdout:
        if line.startswith("model: W-Net"):  # the signal handlers are in place; held-out scoring follows
            break
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert errors == [
        "error: stopped at once by a second Ctrl-C, without a checkpoint now; no checkpoint was written"
    ]
