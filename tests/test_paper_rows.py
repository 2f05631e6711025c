"""The paper's rows end to end on tiny images (no ../shared needed): W-Net + CRF + gPb (Alg. 2),
W-Net+ucm and gpb-owt-ucm computed here, through ``task=bsds``, the val tool
(``experiments/owt_val.py``) and ``task=segment`` (``ucm=alg2`` as the contour choice)."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io
import torch
from helpers import ENV, ROOT, RUN, write_fake_bsds

from wnet.bsds import evaluate, load_prediction
from wnet.datasets.images import read_image
from wnet.inference import predict_image
from wnet.postprocess import CRFParams, Stages, postprocess
from wnet.postprocess.gpb import gpb, gpb_ucm2
from wnet.tasks.bsds import main as pipeline_main
from wnet.tasks.runtime import load_wnet
from wnet.tasks.validate import load_config

ALG2, WNET_UCM = "W-Net + CRF + gPb (paper Alg. 2)", "W-Net + CRF + gPb-owt-ucm (paper W-Net+ucm)"


@pytest.fixture(scope="module")
def bsds_run(tmp_path_factory):
    """task=bsds with the paper's two hierarchies and the gpb-owt-ucm baseline, on 2 test images."""
    tmp = tmp_path_factory.mktemp("paper")
    root = tmp / "BSDS500"
    write_fake_bsds(root)
    cfg = load_config(None, [
        "task=bsds", f"out_dir={tmp / 'runs'}", "name=paper", "data.name=bsds500", f"data.root={root}",
        "data.splits=[train, val]", "data.eval_split=test", "data.image_size=32", "data.num_eval_images=1",
        "model.k=4", "model.base_width=4", "train.iterations=2", "train.batch_size=2",
        "train.num_samples=1", "train.threads=1", "ncut.radius=3", "crf.kind=torch", "crf.radius=3",
        "ucm=alg2", "bsds.ucms=[alg2, wnet+ucm]", "bsds.baselines=[gpb-owt-ucm]", "bsds.nthresh=5",
        "bsds.workers=1", "wandb.mode=disabled",
    ])  # fmt: skip
    return root, tmp / "runs", pipeline_main(cfg)["rows"]


def test_task_bsds_scores_the_paper_s_rows_and_computes_gpb_once_per_image(bsds_run):
    root, runs, rows = bsds_run
    assert list(rows) == ["W-Net raw (argmax)", "W-Net + CRF", ALG2, WNET_UCM, "baseline: gpb-owt-ucm"]
    for name in (ALG2, WNET_UCM, "baseline: gpb-owt-ucm"):
        s = rows[name]
        assert s["n_images"] == 2 and s["n_levels"] == 5, name
        assert 0 < s["sc_ods"] <= s["sc_ois"] <= 1 and 0 <= s["bdry_ods_f"] <= 1 and s["vi_ods"] >= 0, name
    # one gPb per test image, shared by Alg. 2, W-Net+ucm and the baseline
    assert len(list((runs / "gpb_cache").glob("*.npy"))) == 2
    # the baseline is gPb-owt-ucm of each image, scored by the benchmark as any ucm2 folder
    ref = _score(root, "gpb", lambda rgb, probs: {"ucm2": gpb_ucm2(gpb(rgb).orient)})
    for key in ("sc_ods", "pri_ods", "vi_ods", "bdry_ods_f"):
        assert rows["baseline: gpb-owt-ucm"][key] == pytest.approx(ref[key], abs=1e-9), key
    # procedural images have sharp, true regions: gPb-owt-ucm finds most of their boundaries
    assert ref["bdry_ods_f"] > 0.2 and ref["sc_ods"] > 0.6


def test_the_flat_rows_are_scored_as_label_maps_from_1(bsds_run):
    """The covering ignores label 0 (as the official regionprops does): the W-Net raw row must be the
    argmax components numbered from 1, or one region of every image is lost."""
    root, runs, rows = bsds_run
    model, _ = load_wnet(runs / "paper" / "last.pt", torch.device("cpu"))

    def regions(rgb, probs, model=model):
        out = postprocess(
            probs, rgb.astype(np.float32) / 255, Stages(crf=CRFParams(kind="none")), (), regions=True
        )
        return {"segs": out.regions["raw"] + 1}

    ref = _score(root, "raw", regions, model)
    for key in ("sc_ods", "pri_ods", "vi_ods", "bdry_ods_f"):
        assert rows["W-Net raw (argmax)"][key] == pytest.approx(ref[key], abs=1e-9), key
    assert ref["sc_ods"] > 0


def _score(root, name, predict, model=None):
    """Benchmark scores of ``predict(rgb, probs)`` (a .mat dict) over the test images."""
    folder = root / name
    folder.mkdir()
    for path in sorted((root / "images" / "test").glob("*.jpg")):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        probs = None if model is None else predict_image(model, read_image(path, 3), "none", 64)
        scipy.io.savemat(folder / f"{path.stem}.mat", predict(rgb, probs))
    return evaluate(folder, root / "groundTruth" / "test", nthresh=5, workers=1)


def test_the_val_tool_scores_the_same_rows(bsds_run, tmp_path):
    root, runs, rows = bsds_run
    out = tmp_path / "val"
    cmd = [sys.executable, str(ROOT / "experiments" / "owt_val.py"), "--checkpoint", str(runs / "paper" / "last.pt"),
           "--data", str(root), "--split", "test", "--out", str(out), "--nthresh", "5",
           "--rows", "gpb-owt-ucm,alg2,wnet+ucm:mean,wnet+ucm:max"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads((out / "owt_val.json").read_text())
    gpb_row = next(v for k, v in got.items() if k.startswith("gPb-owt-ucm"))
    for key in ("sc_ods", "pri_ods", "vi_ods", "bdry_ods_f"):  # same images, same gPb, same benchmark
        assert gpb_row[key] == pytest.approx(rows["baseline: gpb-owt-ucm"][key], abs=1e-9), key
    combos = [k for k in got if "W-Net+ucm" in k]
    assert len(combos) == 2 and any(k.startswith(ALG2) for k in got)


def test_task_segment_takes_alg2_as_its_contour_choice(bsds_run, tmp_path):
    root, runs, _ = bsds_run
    out = tmp_path / "seg"
    cmd = [*RUN, "task=segment", f"checkpoint={runs / 'paper' / 'last.pt'}",
           f"segment.input={root / 'images' / 'test'}", f"segment.output={out}", "train.threads=1",
           "segment.outputs=[labels,ucm2]", "crf.kind=none", "ucm=alg2"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for stem in ("200", "201"):
        ucm2 = load_prediction(out / "ucm2" / f"{stem}.mat").data
        assert ucm2.shape == (81, 81) and 0 <= ucm2.min() and ucm2.max() <= 1
        # Alg. 2 keeps contours only on W-Net's own argmax boundaries
        labels = cv2.imread(str(out / "labels" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert labels.shape == (40, 40)
        cracks_h = ucm2[2:-1:2, 1::2] > 0  # between vertical neighbours
        assert not (cracks_h & (labels[:-1] == labels[1:])).any()
