"""Helpers shared by several test modules: paths, generated datasets, tiny configs.

Test modules import these (``from helpers import ...``; pytest puts ``tests/`` on the path);
they never import each other.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import scipy.ndimage

from wnet.datasets.procedural import make_image

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# the development data: $WNET_DATA, else ../shared/data beside the checkout when it exists; tests
# that need it skip with a reason otherwise (a user's machine has neither)
SHARED = Path(os.environ.get("WNET_DATA") or ROOT.parent / "shared" / "data")
# the README's command line, run as a user runs it, and its environment: no W&B, one OpenMP thread,
# this checkout's package first (a second checkout beside the installed one tests its own code)
RUN = [sys.executable, str(ROOT / "experiments" / "run.py")]
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def run_cli(args: list[str], launcher: list[str] = RUN, **kw) -> subprocess.CompletedProcess:
    """``launcher args`` in a subprocess with ``ENV``; its output captured as text."""
    return subprocess.run([*launcher, *args], capture_output=True, text=True, env=ENV, timeout=600, **kw)


def checkpoint_step(ckpt: Path) -> int:
    """The step of a checkpoint file, -1 while it is missing or being replaced."""
    from wnet.tasks.checkpoints import load_checkpoint

    try:
        return load_checkpoint(ckpt)["step"] if ckpt.is_file() else -1
    except Exception:  # being replaced at this instant: look again
        return -1


def signal_at_step(proc: subprocess.Popen, ckpt: Path, min_step: int, send) -> None:
    """Call ``send()`` (a signal to the process or its group) once ``ckpt`` reaches ``min_step``,
    or give up when the process ends first or after 300 s."""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if checkpoint_step(ckpt) >= min_step:
            send()
            return
        time.sleep(0.01)


def signal_during_training(start, ckpt: Path, min_step: int, last_step: int, sig: int, tries: int = 3):
    """Start a run (``start()`` returns a ``Popen`` with ``start_new_session=True`` and stderr piped
    or discarded), send ``sig`` to its process group once ``ckpt`` reaches ``min_step``, and return
    ``(returncode, stderr)`` of a run the signal reached while it was training.

    On a busy machine the poll can come late, after the run has written its ``last_step``
    checkpoint: the signal then lands in the final evaluation or in interpreter shutdown (exit 0
    or ``-sig``), which tests nothing. That run folder is removed and the run started again, at most
    ``tries`` times; the assertions on an interrupted run stay as strict as before.
    """
    for _ in range(tries):
        proc = start()
        signal_at_step(proc, ckpt, min_step, lambda p=proc: os.killpg(p.pid, sig))
        _, err = proc.communicate(timeout=300)
        if checkpoint_step(ckpt) < last_step:
            return proc.returncode, err or ""
        shutil.rmtree(ckpt.parent)
    pytest.fail(f"the signal never reached the run before its step-{last_step} checkpoint in {tries} tries")


def load_script(name: str):
    """``experiments/<name>.py`` as a module (imported once), loaded by file: no import-path edits."""
    key = f"experiments_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "experiments" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


# the quick unsupervised run, shrunk to seconds (procedural 32 px images, K = 4, width 4)
TINY = [
    "data.image_size=32",
    "data.num_images=8",
    "data.num_eval_images=2",
    "model.base_width=4",
    "model.k=4",
    "train.batch_size=4",
    "train.log_every=1",
    "train.num_samples=2",
    "ncut.radius=3",
    "wandb.mode=disabled",
]


def shared_path(*parts: str) -> Path:
    """Path under the development data (``SHARED``), or skip the test with a reason when it is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(
            f"{p} not present (development data: set WNET_DATA, or ../shared/data beside the checkout)"
        )
    return p


# class id -> BGR colour of its shapes; class 0 is the background
COLOURS = [(40, 40, 40), (30, 30, 220), (40, 200, 40), (220, 160, 30)]


def write_paired(root: Path, num_classes: int = 3, n_train: int = 6, n_val: int = 3, size: int = 32) -> Path:
    """CamVid-like folders ``{train,val}`` + ``{train,val}annot``: a rectangle and a disc of random classes.

    Every class has its own colour (plus noise), so a classifier can learn it from the pixels.
    """
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = np.zeros((size, size), np.uint8)
            c1, c2 = rng.integers(1, num_classes, 2)
            x0, y0 = rng.integers(0, size // 2, 2)
            cv2.rectangle(label, (int(x0), int(y0)), (int(x0) + size // 3, int(y0) + size // 3), int(c1), -1)
            cx, cy = rng.integers(size // 4, 3 * size // 4, 2)
            cv2.circle(label, (int(cx), int(cy)), size // 6, int(c2), -1)
            image = np.array(COLOURS[:num_classes], np.float32)[label]  # (H, W, 3) BGR
            image += rng.normal(0, 8, image.shape)
            cv2.imwrite(str(root / split / f"{i:03d}.png"), image.clip(0, 255).astype(np.uint8))
            cv2.imwrite(str(root / f"{split}annot" / f"{i:03d}.png"), label)
    return root


def paired_overrides(root: Path, out: Path, num_classes: int = 3) -> list[str]:
    return [
        "task=supervised",
        "data.name=paired",
        f"data.root={root}",
        f"data.num_classes={num_classes}",
        "data.image_size=32",
        "data.eval_size=32",
        "model.base_width=4",
        "train.batch_size=2",
        "train.log_every=1",
        "train.num_samples=2",
        "wandb.mode=disabled",
        f"out_dir={out}",
    ]


def write_fake_bsds(root, n_train=4, n_test=2, size=40):
    """Procedural images in the official layout, with two 'annotators' per image (the second coarser)."""
    for split, n, offset in (("train", n_train, 0), ("val", 1, 100), ("test", n_test, 200)):
        (root / "images" / split).mkdir(parents=True)
        (root / "groundTruth" / split).mkdir(parents=True)
        for i in range(n):
            rgb, lab = make_image(offset + i, size, seed=5)
            cv2.imwrite(
                str(root / "images" / split / f"{offset + i}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            )
            gt = np.empty((1, 2), dtype=object)
            for a, seg in enumerate((lab + 1, np.minimum(lab, 1) + 1)):  # labels from 1, as in the .mat files
                bdry = np.zeros_like(seg, dtype=np.uint8)
                bdry[:-1] |= (seg[:-1] != seg[1:]).astype(np.uint8)
                bdry[:, :-1] |= (seg[:, :-1] != seg[:, 1:]).astype(np.uint8)
                gt[0, a] = {"Segmentation": seg.astype(np.uint16), "Boundaries": bdry}
            scipy.io.savemat(root / "groundTruth" / split / f"{offset + i}.mat", {"groundTruth": gt})


# ----------------------------------------------------------------------------- ucm2 levels
def read_level(ucm2: np.ndarray, t: float) -> np.ndarray:
    """The official benchmark's reading: 8-connected components of ucm2 <= t at odd positions."""
    labels, _ = scipy.ndimage.label(ucm2 <= t, structure=np.ones((3, 3)))
    return labels[1::2, 1::2]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = len(np.unique(a.astype(np.int64) * (b.max() + 1) + b))
    return pairs == len(np.unique(a)) == len(np.unique(b))


def nested(fine: np.ndarray, coarse: np.ndarray) -> bool:
    """Every fine region lies inside one coarse region."""
    return len(np.unique(fine.astype(np.int64) * (coarse.max() + 1) + coarse)) == len(np.unique(fine))
