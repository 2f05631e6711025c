"""The shipped pretrained W-Net (wnet/weights/bsds500_cpu.pt, wnet/zoo.py): what it holds, the
notebook entry points, task=segment without a checkpoint, and its stored BSDS val scores."""

import csv
import subprocess
import sys
import tomllib

import cv2
import numpy as np
import pytest
import torch
from helpers import ENV, ROOT, load_script, shared_path

import wnet
from wnet import zoo
from wnet.model import WNet
from wnet.tasks import model_card
from wnet.tasks.bsds_tables import OWT_ROW
from wnet.tasks.cli import run
from wnet.tasks.results import RESULTS

SHIPPED = zoo.pretrained_path("bsds500_cpu")


def test_the_file_is_small_loads_weights_only_and_says_where_it_came_from():
    assert SHIPPED.stat().st_size <= 10e6
    data = torch.load(SHIPPED, weights_only=True)  # no pickled code
    assert zoo.is_weights(data)
    assert data["config"]["model"] == dict(
        k=64, in_channels=3, base_width=8, dropout=0.0, separable=True, padding="circular"
    )
    p = data["provenance"]
    assert (p["config_file"], p["seed"], p["steps"], p["splits"]) == (
        "experiments/configs/bsds500_cpu.yaml", 0, 2400, ["train", "val"]
    )  # fmt: skip
    assert (ROOT / p["config_file"]).is_file() and "non-commercial" in p["data_licence"]


def test_pyproject_ships_the_weights_as_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert SHIPPED.relative_to(ROOT / "wnet").match(data["wnet"][-1])


def test_wnet_pretrained_is_the_file_s_model_in_eval_mode():
    model = wnet.pretrained("bsds500_cpu")
    assert isinstance(model, WNet) and not model.training and model.k == 64
    for k, v in zoo.read_weights(SHIPPED)["models"]["wnet"].items():
        assert torch.equal(model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="expected one of bsds500_cpu"):
        wnet.pretrained("bsds501")


def test_import_wnet_stays_light():
    code = "import sys, wnet; print('torch' in sys.modules); wnet.pretrained; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr


def test_segment_without_a_checkpoint_uses_the_shipped_model_and_says_so(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, 32:] = (200, 60, 20)
    assert cv2.imwrite(str(tmp_path / "photos" / "a.png"), rgb)
    out = tmp_path / "out"
    args = [f"segment.input={tmp_path / 'photos'}", f"segment.output={out}", "crf.workers=1", "ucm=merge"]
    run(["task=segment", "train.threads=1", "wandb.mode=disabled", *args])
    said = capsys.readouterr().out
    assert "no checkpoint= given, so the shipped pretrained W-Net 'bsds500_cpu' is used" in said
    labels = cv2.imread(str(out / "labels" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (48, 64) and (out / "overlay" / "a.png").is_file()


def test_the_model_card_is_rendered_from_the_files(tmp_path):
    copy = tmp_path / "model_card.md"
    copy.write_text(model_card.CARD.read_text())
    assert model_card.render(copy) == model_card.CARD.read_text()  # nothing typed by hand in the blocks
    seed0 = model_card.computed_rows(RESULTS / "bsds500_cpu.csv")
    owt = seed0[OWT_ROW]  # the row's name in the results file, as task=bsds writes it
    assert f"| {OWT_ROW} | {owt['sc_ods']:.3f} | {owt['sc_ois']:.3f} |" in copy.read_text()


@pytest.mark.parametrize(
    "meta, seed, commit",
    [
        ({"commit": "c", "seeds": [0, 1, 2]}, 0, "c"),  # one sitting made every seed
        (
            {
                "commit": "b",
                "seeds": [0, 1, 2],
                "sittings": [{"commit": "a", "seeds": [2]}, {"commit": "b", "seeds": [0, 1]}],
            },
            2,
            "a",
        ),
        (
            {
                "commit": "b",
                "seeds": [0, 1, 2],
                "sittings": [{"commit": "a", "seeds": [0]}, {"commit": "b", "seeds": [1, 2]}],
            },
            0,
            "a",
        ),
    ],
)
def test_the_card_names_the_sitting_that_made_the_seed_not_the_latest(meta, seed, commit):
    assert model_card.seed_sitting(meta, seed)["commit"] == commit


@pytest.mark.slow  # the whole task=bsds pipeline on 5 val images: a few minutes on a busy 2-core machine
def test_the_shipped_weights_reproduce_their_stored_val_scores(tmp_path):
    data = shared_path("BSDS500")
    reproduce = load_script("reproduce")
    r = subprocess.run(reproduce.val5_command(data, SHIPPED, tmp_path), capture_output=True, text=True,
                       env={**ENV, **reproduce.CPU_KERNELS}, timeout=1800)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]

    def rows(path):
        with open(path, newline="") as f:
            return {r["method"]: r for r in csv.DictReader(f) if r["source"] == "computed"}

    fresh, stored = (
        rows(tmp_path / "pretrained-val5" / "bsds500_results.csv"),
        rows(RESULTS / f"{model_card.VAL5}.csv"),
    )
    assert len(stored) == 4 and fresh == stored


def test_export_keeps_the_weights_and_what_trained_them_and_nothing_else(tmp_path):
    from helpers import TINY

    from wnet.tasks import load_wnet

    run([*TINY, "train.iterations=2", "train.threads=1", f"out_dir={tmp_path}", "name=w"])
    dest = tmp_path / "w.pt"
    load_script("export_pretrained").main([str(tmp_path / "w" / "last.pt"), str(dest), "--name", "tiny"])
    data = torch.load(dest, weights_only=True)
    assert set(data) == set(zoo.KEYS) and data["step"] == 2 and data["provenance"]["seed"] == 0
    ckpt = torch.load(tmp_path / "w" / "last.pt", weights_only=True)
    model, info = zoo.load_weights_file(dest)
    for k, v in ckpt["models"]["wnet"].items():
        assert torch.equal(model.state_dict()[k], v), k
    again, saved = load_wnet(dest, torch.device("cpu"))  # checkpoint= takes the file too
    assert saved.model.k == 4 and torch.equal(again.u_enc.head.weight, model.u_enc.head.weight)
