"""Run folders are owned: one run at a time holds its folder (a lock naming its PID), nothing is
written or deleted outside ``out_dir``, and a resume checks its checkpoint before writing anything.

The concurrency test starts two identical ``resume=auto`` jobs at once, as a scheduler's duplicate
submission does: one complete run, one clean refusal naming the other's PID. The default suite
runs it once, ``pytest -m slow`` 20 times.
"""

import json
import os
import subprocess
import time

import pytest
import torch
from helpers import ENV, RUN, TINY, write_paired

from wnet.tasks import cli
from wnet.tasks.checkpoints import load_checkpoint
from wnet.tasks.config import Config
from wnet.tasks.errors import RunInUse
from wnet.tasks.folders import LOCK_FILE, FolderLock
from wnet.tasks.keys import config_to_dict


def _main(args, capsys) -> tuple[int, list[str]]:
    """``experiments/run.py args`` in this process: (exit code, its ``error:`` lines)."""
    try:
        cli.main(args)
        code = 0
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("error: ")]


# ----------------------------------------------------------------------------- the lock itself
def test_a_locked_folder_refuses_a_second_holder_naming_the_first(tmp_path):
    lock = FolderLock.take(tmp_path / "run")
    assert (tmp_path / "run" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(
        RunInUse, match=rf"run folder {tmp_path / 'run'} is in use by another run \(PID {os.getpid()} "
    ):
        FolderLock.take(tmp_path / "run")  # a second open file: flock refuses it, even in one process
    lock.release()
    FolderLock.take(tmp_path / "run").release()


def test_a_forked_child_does_not_keep_the_folder_locked(tmp_path):
    """A DataLoader worker that outlives its killed run for a moment must not hold the lock."""
    lock = FolderLock.take(tmp_path / "run")
    ready, tell = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child (its fork hooks have run): hold whatever it inherited for a while
        os.write(tell, b"1")
        time.sleep(3)
        os._exit(0)
    try:
        assert os.read(ready, 1) == b"1"
        lock.release()
        FolderLock.take(tmp_path / "run").release()  # while the child still lives
    finally:
        os.waitpid(pid, 0)


# ----------------------------------------------------------------------------- two jobs at once
def _race(out, *extra) -> None:
    """Two identical jobs started together: one complete run, one refusal naming the other's PID."""
    args = [*TINY, "train.threads=1", f"out_dir={out}", "name=job", "train.iterations=40", *extra]
    procs = [
        subprocess.Popen([*RUN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        for _ in range(2)
    ]
    done = [(p.pid, *p.communicate(timeout=600), p.returncode) for p in procs]
    assert sorted(d[3] for d in done) == [0, 3], [d[2][-1500:] for d in done]
    (winner, *_), (_, _, err, _) = sorted(done, key=lambda d: d[3])
    folder = out / "job"
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: run folder {folder} is in use by another run (PID {winner} holds {folder / LOCK_FILE}); "
        "wait for it to end, or give this run another name="
    ]
    steps = [
        r["step"]
        for r in map(json.loads, (folder / "log.jsonl").read_text().splitlines())
        if r["split"] == "train"
    ]
    assert steps == list(range(1, 41))  # one run's log, not two interleaved
    assert load_checkpoint(folder)["step"] == 40 and sorted(p.name for p in out.iterdir()) == ["job"]


def test_two_identical_resume_auto_jobs_give_one_run_and_one_refusal(tmp_path):
    _race(tmp_path / "runs", "resume=auto")


@pytest.mark.slow
@pytest.mark.stress  # CI runs the single race (default suite) and leaves the twenty out for time
def test_two_identical_resume_auto_jobs_twenty_times(tmp_path):
    for i in range(20):
        _race(tmp_path / f"runs{i}", "resume=auto")


@pytest.mark.slow
def test_two_overwrite_jobs_at_once_give_one_run_and_one_refusal(tmp_path):
    (tmp_path / "runs" / "job").mkdir(parents=True)
    (tmp_path / "runs" / "job" / "config.yaml").write_text("# an earlier run, to be replaced\n")
    _race(tmp_path / "runs", "overwrite=true")


# ----------------------------------------------------------------------------- nothing outside out_dir
@pytest.mark.parametrize("name", ["/tmp/elsewhere", "../up", "a/b", ".", ".."])
def test_a_name_that_is_a_path_is_refused(tmp_path, capsys, name):
    code, errors = _main([*TINY, f"out_dir={tmp_path / 'runs'}", f"name={name}"], capsys)
    assert code == 2 and errors == [
        f"error: config key 'name': {name!r} is not allowed; expected a plain folder name (no '/'): "
        "the run folder is <out_dir>/<name>"
    ]
    assert not (tmp_path / "runs").exists()


def test_overwrite_never_follows_a_link_out_of_out_dir(tmp_path, capsys):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "config.yaml").write_text("not yours\n")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "job").symlink_to(outside)
    code, errors = _main([*TINY, f"out_dir={tmp_path / 'runs'}", "name=job", "overwrite=true"], capsys)
    assert code == 3 and errors == [
        f"error: overwrite=true: {tmp_path / 'runs' / 'job'} leads outside out_dir={tmp_path / 'runs'}; not touching it"
    ]
    assert sorted(p.name for p in outside.iterdir()) == ["config.yaml"]


def test_resume_from_a_path_continues_in_that_folder_and_says_so(tmp_path, capsys):
    first = [*TINY, "train.threads=1", f"out_dir={tmp_path / 'a'}", "name=x", "train.iterations=2"]
    assert _main(first, capsys)[0] == 0
    again = [*TINY, "train.threads=1", f"out_dir={tmp_path / 'b'}", "train.iterations=3"]
    assert _main([*again, f"resume={tmp_path / 'a' / 'x' / 'last.pt'}"], capsys)[0] == 0
    assert not (tmp_path / "b").exists() and load_checkpoint(tmp_path / "a" / "x")["step"] == 3
    assert f"out_dir: {tmp_path / 'a'}\n" in (tmp_path / "a" / "x" / "config.yaml").read_text()


# ----------------------------------------------------------------------------- a resume checks first
def _finished_run(folder, task: str, models: list[str], **model) -> None:
    """A run folder whose ``last.pt`` holds the given (empty) models and a valid config of ``task``."""
    cfg = Config()
    cfg.task = task
    if task == "supervised":
        cfg.data.name, cfg.data.root, cfg.data.num_classes = "paired", "/data/somewhere", 3
    for k, v in model.items():
        setattr(cfg.model, k, v)
    folder.mkdir(parents=True)
    torch.save(
        {"models": {m: {} for m in models}, "config": config_to_dict(cfg), "step": 3}, folder / "last.pt"
    )
    (folder / "config.yaml").write_text("# that run's own config\n")


@pytest.mark.parametrize(
    "task, models, args, message",
    [
        ("supervised", ["unet"], [], "it is a checkpoint of task=supervised (models: unet), this run is task=unsupervised, which trains wnet"),
        ("unsupervised", ["wnet"], ["task=supervised", "data.name=paired", "data.num_classes=3"], "it is a checkpoint of task=unsupervised (models: wnet), this run is task=supervised, which trains unet"),
    ],
    ids=["supervised into unsupervised", "unsupervised into supervised"],
)  # fmt: skip
def test_a_checkpoint_of_the_other_task_is_refused_before_anything_is_written(
    tmp_path, capsys, task, models, args, message
):
    folder = tmp_path / "runs" / "other"
    _finished_run(folder, task, models)
    write_paired(tmp_path / "d", n_train=2, n_val=1, size=32)  # the supervised data builds first
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for resume in (f"resume={folder / 'last.pt'}", "resume=auto"):
        code, errors = _main(
            [
                *TINY,
                f"out_dir={tmp_path / 'runs'}",
                "name=other",
                f"data.root={tmp_path / 'd'}",
                *args,
                resume,
            ],
            capsys,
        )
        assert code == 3 and errors == [f"error: cannot resume from {folder / 'last.pt'}: {message}"]
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # not even a lock file


def test_a_checkpoint_whose_saved_config_is_absurd_is_refused_before_any_allocation(tmp_path, capsys):
    """Width 200000 asked for a 1.4 TB allocation; the saved config now goes through check_config."""
    folder = tmp_path / "runs" / "big"
    _finished_run(folder, "unsupervised", ["wnet"], base_width=200_000)
    code, errors = _main([*TINY, f"out_dir={tmp_path / 'runs'}", "name=big", "resume=auto"], capsys)
    assert code == 3 and errors == [
        f"error: checkpoint {folder / 'last.pt'}: its saved config is refused: config key 'model.base_width': "
        "200000 is not allowed; expected <= 256 (4x the paper's 64)"
    ]
    write_paired(tmp_path / "d", n_train=1, n_val=1, size=32)
    segment = [
        "task=segment",
        f"checkpoint={folder / 'last.pt'}",
        f"segment.input={tmp_path / 'd' / 'train'}",
    ]
    segment += [f"segment.output={tmp_path / 'out'}"]
    code, errors = _main(segment, capsys)
    assert code == 3 and "its saved config is refused: config key 'model.base_width': 200000" in errors[0]
