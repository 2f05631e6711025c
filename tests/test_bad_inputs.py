"""What a user sees for each bad input: ``experiments/run.py`` exits non-zero with one line naming
the key or file, no traceback, and (for a config error) no run folder.

Exit codes (wnet.tasks.errors): 2 config, 3 input files and checkpoints, 4 a diverged run.
"""

import subprocess

import cv2
import numpy as np
import pytest
from helpers import RUN, TINY, write_paired

from wnet.tasks import cli


def _images(folder, n=2, size=24):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((size, size, 3), 40 * i, np.uint8))
    return folder


def _paired(tmp, mutate):
    root = write_paired(tmp / "pairs", n_train=2, n_val=1, size=16)
    mutate(root)
    return [
        "task=supervised",
        "data.name=paired",
        f"data.root={root}",
        "data.num_classes=3",
        "data.image_size=16",
    ]


def _ckpt(tmp, *extra):
    """A finished 1-step W-Net run; returns its last.pt."""
    out = tmp / "made"
    r = subprocess.run(
        [*RUN, *TINY, f"out_dir={out}", "name=src", "train.iterations=1", *extra],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return out / "src" / "last.pt"


def _truncated(tmp):
    path = _ckpt(tmp)
    data = path.read_bytes()
    (tmp / "trunc.pt").write_bytes(data[: len(data) // 2])
    return tmp / "trunc.pt"


def _yaml(tmp, text):
    (tmp / "c.yaml").write_text(text)
    return ["--config", str(tmp / "c.yaml")]


def _folder_with(tmp, name: str, data: bytes) -> list[str]:
    """An image folder holding one file ``name`` with ``data`` (a corrupt or fake image)."""
    folder = tmp / "images"
    folder.mkdir()
    (folder / name).write_bytes(data)
    return ["data.name=folder", f"data.root={folder}"]


def _empty_folder(tmp) -> list[str]:
    (tmp / "empty").mkdir()
    return ["data.name=folder", f"data.root={tmp / 'empty'}"]


# (id, argument builder (tmp path -> extra args), exit code, text the one-line message must contain)
CASES = [
    ("unknown key", lambda t: ["model.kk=3"], 2, "unknown config key 'model.kk'"),
    ("wrong type", lambda t: ["model.k=abc"], 2, "'model.k': expected an integer"),
    ("missing config file", lambda t: ["--config", str(t / "nope.yaml")], 2, "nope.yaml does not exist"),
    ("malformed yaml", lambda t: _yaml(t, "model: [k: 3\n"), 2, "is not valid YAML at line"),
    ("yaml unknown key", lambda t: _yaml(t, "train:\n  iterationz: 3\n"), 2, "c.yaml: unknown config key"),
    ("negative iterations", lambda t: ["train.iterations=-5"], 2, "'train.iterations': -5"),
    ("zero batch", lambda t: ["train.batch_size=0"], 2, "'train.batch_size': 0"),
    ("K=1", lambda t: ["model.k=1"], 2, "'model.k': 1 is not allowed; expected >= 2"),
    (
        "padding",
        lambda t: ["model.padding=mirror"],
        2,
        "'model.padding': 'mirror' is not allowed; expected one of zeros, reflect, replicate, circular",
    ),
    ("sigma_i=0", lambda t: ["ncut.sigma_i=0"], 2, "'ncut.sigma_i': 0.0"),
    ("radius=0", lambda t: ["ncut.radius=0"], 2, "'ncut.radius': 0.0"),
    ("amp fp8", lambda t: ["train.amp=fp8"], 2, "'train.amp': 'fp8'"),
    ("device tpu", lambda t: ["train.device=tpu"], 2, "'train.device': 'tpu'"),
    (
        "cuda absent",
        lambda t: ["train.device=cuda"],
        2,
        "cuda asked for, but this machine has 0 CUDA devices",
    ),
    ("negative lr", lambda t: ["optim.lr=-0.1"], 2, "'optim.lr': -0.1"),
    ("optimiser", lambda t: ["optim.name=rmsprop"], 2, "'optim.name': 'rmsprop'"),
    ("loss name", lambda t: ["supervised.loss=dice+nosuch"], 2, "unknown loss 'nosuch'"),
    ("dataset name", lambda t: ["data.name=imagenet"], 2, "'data.name': 'imagenet'"),
    ("crf kind", lambda t: ["crf.kind=fancy"], 2, "crf.kind must be one of dense, torch, none"),
    ("hierarchy alpha", lambda t: ["hierarchy.alpha=2"], 2, "hierarchy.alpha must lie in [0, 1]"),
    ("task name", lambda t: ["task=segmentation"], 2, "'task': 'segmentation'"),
    ("scale order", lambda t: ["data.scale=[2.0, 1.0]"], 2, "'data.scale'"),
    ("no data root", lambda t: ["data.name=folder"], 2, "'data.root'"),
    ("missing resume", lambda t: [f"resume={t / 'gone.pt'}"], 2, "'resume'"),
    ("unknown option", lambda t: ["--fast"], 2, "unknown option '--fast'"),
    ("missing folder", lambda t: ["data.name=folder", f"data.root={t / 'nope'}"], 3, "image folder"),
    ("empty folder", _empty_folder, 3, "no images"),
    (
        "corrupt image",
        lambda t: _folder_with(t, "x.jpg", b"\xff\xd8\xff\xe0 truncated"),
        3,
        "cannot read image",
    ),
    ("text file as jpg", lambda t: _folder_with(t, "notes.jpg", b"hello, not a picture"), 3, "notes.jpg"),
    (
        "mask of wrong size",
        lambda t: _paired(
            t, lambda r: cv2.imwrite(str(r / "trainannot" / "000.png"), np.zeros((7, 9), np.uint8))
        ),
        3,
        "is 7x9 but image",
    ),
    (
        "mask stored as jpg",
        lambda t: _paired(t, lambda r: (r / "trainannot" / "001.png").rename(r / "trainannot" / "001.jpg")),
        3,
        "001.jpg is a JPEG",
    ),
    (
        "label out of range",
        lambda t: [*_paired(t, lambda r: None)[:3], "data.num_classes=2"],
        3,
        "outside [0, 1]",
    ),
    ("truncated checkpoint", lambda t: [f"resume={_truncated(t)}"], 3, "cannot be read: it is truncated"),
    (
        "other architecture",
        lambda t: [f"resume={_ckpt(t, 'model.k=8')}", "model.k=5"],
        3,
        "checkpoint has model.k=8, this run has model.k=5",
    ),
    (
        "diverged",
        lambda t: ["optim.name=sgd", "optim.lr=1e9", "train.iterations=40"],
        4,
        "non-finite loss at step",
    ),
    # issue 29: a second block silently replaced the first; a run folder under a file was a traceback
    (
        "duplicate yaml key",
        lambda t: _yaml(t, "train:\n  iterations: 3\ntrain:\n  batch_size: 2\n"),
        2,
        "duplicate key 'train'",
    ),
    ("out_dir is a file", lambda t: [f"out_dir={_file(t)}"], 3, "file/default: Not a directory"),
]


def _file(tmp):
    (tmp / "file").write_text("not a folder")
    return tmp / "file"


def _training_folder_with_a_cut_jpeg(tmp) -> list[str]:
    folder = _images(tmp / "photos", n=3, size=32)
    ok, jpeg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (128, 128, 3), np.uint8))
    (folder / "1b.jpg").write_bytes(jpeg.tobytes()[:5000])  # sorts among the training images
    return ["data.name=folder", f"data.root={folder}"]


# the same matrix through experiments/run.py's main in this process: each case fails in milliseconds
# to a second, where a subprocess pays the interpreter's start (one subprocess case per class above)
IN_PROCESS = [
    ("lr inf", lambda t: ["optim.lr=inf"], 2, "config key 'optim.lr': inf is not allowed; expected a finite number"),
    ("lr nan", lambda t: ["optim.lr=.nan"], 2, "config key 'optim.lr': nan is not allowed; expected a finite number"),
    ("K beyond the maximum", lambda t: ["model.k=5000"], 2, "'model.k': 5000 is not allowed; expected <= 1024"),
    ("width beyond the maximum", lambda t: ["model.base_width=200000"], 2, "'model.base_width': 200000 is not allowed; expected <= 256"),
    ("N-Cut radius beyond the crop", lambda t: ["ncut.radius=400"], 2, "'ncut.radius': 400.0 is not allowed; expected <= data.image_size (32 px)"),
    ("CRF radius beyond the crop", lambda t: ["crf.kind=torch", "crf.radius=100"], 2, "'crf.radius': 100.0 is not allowed; expected <= data.image_size (32 px)"),
    ("batch of 1 with BatchNorm", lambda t: ["train.batch_size=1", "data.image_size=16"], 2, "'train.batch_size': 1 is not allowed; expected >= 2 with data.image_size=16: the crop is 1x1 px"),
    ("nested duplicate yaml key", lambda t: _yaml(t, "train:\n  iterations: 3\n  iterations: 4\n"), 2, "duplicate key 'iterations' (first given at line 2)"),
    ("name is a path", lambda t: [f"name={t / 'elsewhere'}"], 2, "config key 'name'"),
    ("truncated jpeg in a training folder", _training_folder_with_a_cut_jpeg, 3, "1b.jpg: it is truncated (no JPEG end-of-image marker (FF D9))"),
    ("diverged before any checkpoint", lambda t: ["optim.name=sgd", "optim.lr=1e9", "train.iterations=40"], 4, "; no checkpoint was written yet. Lower optim.lr"),
]  # fmt: skip


@pytest.mark.parametrize("name, build, code, message", IN_PROCESS, ids=[c[0] for c in IN_PROCESS])
def test_bad_input_in_process_is_one_line_with_its_exit_code(
    tmp_path, capsys, monkeypatch, name, build, code, message
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs"
    with pytest.raises(SystemExit) as e:
        cli.main([*TINY, "train.threads=1", f"out_dir={out}", *build(tmp_path)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert e.value.code == code and len(errors) == 1 and message in errors[0], err[-2000:]
    print(f"bad-input matrix | {name} | {code} | {errors[0]} |")
    if code == 2:
        assert not out.exists() and not (tmp_path / "elsewhere").exists()


def test_a_batch_of_one_trains_when_the_crop_leaves_more_than_one_pixel(tmp_path):
    """32 px: 2x2 px at the bottom of the U-Net, four values per channel for BatchNorm."""
    cli.main([*TINY, "train.threads=1", f"out_dir={tmp_path}", "train.batch_size=1", "train.iterations=2"])
    assert (tmp_path / "default" / "last.pt").is_file()


# one subprocess case per exit code stays in the default suite; every case runs under -m slow (CI)
FAST_CASES = {"unknown key", "missing folder", "diverged"}


@pytest.mark.parametrize(
    "name, build, code, message",
    [pytest.param(*c, id=c[0], marks=() if c[0] in FAST_CASES else pytest.mark.slow) for c in CASES],
)
def test_bad_input_is_one_line_with_its_exit_code(tmp_path, name, build, code, message):
    out = tmp_path / "runs"
    extra = build(tmp_path)
    cmd = [*RUN, *TINY, "train.threads=1", f"out_dir={out}", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == code, r.stderr[-2000:]
    err = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and message in err[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    print(f"bad-input matrix | {name} | {r.returncode} | {err[0]} |")  # pytest -s shows the table
    if code == 2:
        assert not out.exists(), "a config error left a run folder"


@pytest.mark.slow  # a subprocess
def test_debug_shows_the_traceback(tmp_path):
    r = subprocess.run([*RUN, "--debug", "model.k=1", f"out_dir={tmp_path}"], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" in r.stderr and "ConfigError" in r.stderr


@pytest.mark.slow  # a subprocess with an offline W&B run
def test_wandb_agent_form_lands_in_the_config(tmp_path):
    """``wandb agent`` passes ``--key=value``; it means ``key=value``."""
    r = subprocess.run(
        [*RUN, *TINY, "--ncut.sigma_i=7.5", "--model.k=3", "train.iterations=1", f"out_dir={tmp_path}"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    saved = (tmp_path / "default" / "config.yaml").read_text()
    assert "sigma_i: 7.5" in saved and "k: 3" in saved


@pytest.mark.parametrize(
    "raised, code, line",
    [
        (KeyboardInterrupt(), 130, "error: interrupted by Ctrl-C"),  # before a run's own handler is in place
        (OSError(28, "No space left on device", "runs/x/samples/a.png"), 3, "error: runs/x/samples/a.png: No space left on device"),
        (OSError(30, "Read-only file system", "out/index.csv"), 3, "error: out/index.csv: Read-only file system"),
    ],
    ids=["ctrl-c", "disk full", "read-only"],
)  # fmt: skip
def test_ctrl_c_and_refused_writes_anywhere_are_one_line(monkeypatch, capsys, raised, code, line):
    """The command line's safety net, for what no task turned into a user error itself."""

    def run(argv):
        raise raised

    monkeypatch.setattr(cli, "run", run)
    with pytest.raises(SystemExit) as e:
        cli.main(["model.k=3"])
    assert e.value.code == code and capsys.readouterr().err.splitlines() == [line]


def test_any_other_os_error_is_a_bug_and_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(
        cli, "run", lambda argv: (_ for _ in ()).throw(ConnectionRefusedError(111, "refused"))
    )
    with pytest.raises(ConnectionRefusedError):
        cli.main([])
