"""task=bsds end to end on a generated BSDS-layout folder (no ../shared needed)."""

import csv

import cv2
import numpy as np
import scipy.io

from data.procedural import make_image
from wnet.bsds import load_ground_truth
from wnet.config import load_config
from wnet.pipeline import main as pipeline_main


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


def test_bsds_pipeline_end_to_end(tmp_path):
    root = tmp_path / "BSDS500"
    write_fake_bsds(root)
    assert len(load_ground_truth(root / "groundTruth" / "test" / "200.mat")) == 2
    cfg = load_config(
        None,
        [
            "task=bsds",
            f"out_dir={tmp_path / 'runs'}",
            "name=pipe",
            "data.name=bsds500",
            f"data.root={root}",
            "data.splits=[train, val]",
            "data.eval_split=test",
            "data.image_size=32",
            "data.num_eval_images=1",
            "model.k=4",
            "model.base_width=4",
            "train.iterations=2",
            "train.batch_size=2",
            "train.num_samples=1",
            "ncut.radius=3",
            "crf.kind=torch",
            "crf.radius=3",
            "bsds.nthresh=5",
            "bsds.baselines=[kmeans, fh]",
            "bsds.workers=1",
            "wandb.mode=disabled",
        ],
    )
    out = pipeline_main(cfg)
    rows = out["rows"]
    assert list(rows) == [
        "W-Net raw (argmax)",
        "W-Net + CRF",
        "W-Net + CRF + hierarchy",
        "baseline: kmeans",
        "baseline: fh",
    ]
    for name, s in rows.items():
        assert 0 <= s["sc_ods"] <= 1 and 0 <= s["pri_ods"] <= 1 and s["vi_ods"] >= 0, name
        assert s["n_images"] == 2
    # flat rows have one level, so ODS == OIS (the paper's point about flat segmentations)
    assert rows["W-Net raw (argmax)"]["sc_ods"] == rows["W-Net raw (argmax)"]["sc_ois"]
    assert rows["W-Net + CRF + hierarchy"]["n_levels"] == 5
    run = tmp_path / "runs" / "pipe"
    text = (run / "bsds500_results.md").read_text()
    assert "gPb-owt-ucm (published" in text and "W-Net + CRF + hierarchy" in text
    with open(run / "bsds500_results.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["source"] for r in table] == ["computed"] * 5 + ["published"]
    assert float(table[-1]["sc_ods"]) == 0.588
    assert (run / "bsds500_pr.png").stat().st_size > 1000
    assert (run / "bench" / "w-net_plus_crf_plus_hierarchy" / "eval_cover.txt").is_file()

    # a second run scores the saved checkpoint without training; the model config comes from it
    cfg2 = load_config(
        None,
        [
            "task=bsds",
            f"out_dir={tmp_path / 'runs'}",
            "name=pipe2",
            "data.name=bsds500",
            f"data.root={root}",
            f"checkpoint={run / 'last.pt'}",
            "model.k=9",  # overridden by the checkpoint's own model config
            "crf.kind=none",
            "hierarchy.mode=flat",
            "bsds.nthresh=5",
            "bsds.baselines=[kmeans]",
            "bsds.workers=1",
            "wandb.mode=disabled",
        ],
    )
    out2 = pipeline_main(cfg2)
    assert not (tmp_path / "runs" / "pipe2" / "log.jsonl").exists()  # nothing was trained
    raw2 = out2["rows"]["W-Net raw (argmax)"]
    assert raw2 == {**raw2, "sc_ods": rows["W-Net raw (argmax)"]["sc_ods"]}  # same weights, same raw scores
    assert cfg2.model.k == 4
    # baselines do not depend on the W-Net: the second run reuses the first run's cached scores
    assert out2["rows"]["baseline: kmeans"] == rows["baseline: kmeans"]
    assert len(list((tmp_path / "runs" / "bsds_cache").glob("kmeans-*"))) == 1
