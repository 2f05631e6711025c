"""task=bsds end to end on a generated BSDS-layout folder (no ../shared needed)."""

import csv

import numpy as np
import pytest
import scipy.io
from helpers import write_fake_bsds

from wnet.bsds import evaluate, load_ground_truth
from wnet.tasks.bsds import main as pipeline_main
from wnet.tasks.errors import InputError
from wnet.tasks.validate import load_config


def write_external(folder, root):
    """ucm2 files of the val images drawn from their first annotator: another method's output."""
    folder.mkdir()
    for path in (root / "groundTruth" / "val").glob("*.mat"):
        seg = load_ground_truth(path)[0][0]
        ucm2 = np.zeros((2 * seg.shape[0] + 1, 2 * seg.shape[1] + 1))
        ucm2[2:-1:2, 1::2] = seg[:-1] != seg[1:]  # cracks between vertical neighbours
        ucm2[1::2, 2:-1:2] = seg[:, :-1] != seg[:, 1:]
        ucm2[2:-1:2, 2:-1:2] = np.maximum.reduce(  # junctions: the strongest of their four cracks
            [ucm2[1:-2:2, 2:-1:2], ucm2[3::2, 2:-1:2], ucm2[2:-1:2, 1:-2:2], ucm2[2:-1:2, 3::2]]
        )
        scipy.io.savemat(folder / path.name, {"ucm2": ucm2})
    return folder


def test_external_folder_of_no_split_is_refused_before_anything_runs(tmp_path):
    root = tmp_path / "BSDS500"
    write_fake_bsds(root)
    ext = write_external(tmp_path / "ext", root)
    (ext / "100.mat").rename(ext / "999.mat")
    cfg = load_config(None, ["task=bsds", f"out_dir={tmp_path / 'runs'}", "data.name=bsds500", f"data.root={root}",
                             f"bsds.external={{other: {ext}}}", "wandb.mode=disabled"])  # fmt: skip
    with pytest.raises(
        InputError, match=r"bsds.external.other: the 1 predictions .* not all images of one split"
    ):
        pipeline_main(cfg)
    assert not (tmp_path / "runs").exists()


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
            "bsds.baselines=[kmeans, fh, canny-owt-ucm]",
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
        "W-Net + CRF + OWT-UCM (soft-map contours)",
        "baseline: kmeans",
        "baseline: fh",
        "baseline: canny-owt-ucm",
    ]
    for name, s in rows.items():
        assert 0 <= s["sc_ods"] <= 1 and 0 <= s["pri_ods"] <= 1 and s["vi_ods"] >= 0, name
        assert s["n_images"] == 2
    # flat rows have one level, so ODS == OIS (the paper's point about flat segmentations)
    assert rows["W-Net raw (argmax)"]["sc_ods"] == rows["W-Net raw (argmax)"]["sc_ois"]
    assert rows["W-Net + CRF + hierarchy"]["n_levels"] == 5
    for name in (
        "W-Net + CRF + OWT-UCM (soft-map contours)",
        "baseline: canny-owt-ucm",
    ):  # ucm2s: scored at the 5 thresholds
        s = rows[name]
        assert s["n_levels"] == 5 and 0 <= s["bdry_ods_f"] <= 1 and s["sc_ois"] >= s["sc_ods"], name
    run = tmp_path / "runs" / "pipe"
    text = (run / "bsds500_results.md").read_text()
    assert "gPb-owt-ucm (published" in text and "W-Net + CRF + hierarchy" in text
    assert "| Canny-owt-ucm (published, Xia & Kulis 2017 Table 2; not computed here) | 0.490 |" in text
    with open(run / "bsds500_results.csv") as f:
        table = {r["method"]: r for r in csv.DictReader(f)}
    assert [r["source"] for r in table.values()] == ["computed"] * 7 + ["published"] * 10
    assert float(table["gPb-owt-ucm"]["sc_ods"]) == 0.588
    assert float(table["Canny-owt-ucm (paper)"]["vi_ods"]) == 2.19 and table["W-Net (paper)"]["bdry_ap"] == ""
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
            f"bsds.external={{annotator: {write_external(tmp_path / 'ext', root)}}}",
            "wandb.mode=disabled",
        ],
    )
    out2 = pipeline_main(cfg2)
    # an external ucm2 folder of the val images is scored against val's ground truth, and says so
    ext = out2["rows"]["external: annotator (BSDS500 val, 1 images)"]
    direct = evaluate(tmp_path / "ext", root / "groundTruth" / "val", nthresh=5, workers=1)
    assert ext["n_images"] == 1 and ext["bdry_ods_f"] > 0.8  # an annotator's own boundaries
    assert {k: ext[k] for k in ("sc_ods", "pri_ods", "vi_ods", "bdry_ods_f")} == {
        k: direct[k] for k in ("sc_ods", "pri_ods", "vi_ods", "bdry_ods_f")
    }
    log2 = (tmp_path / "runs" / "pipe2" / "log.jsonl").read_text()
    assert (
        '"split": "train"' not in log2 and '"split": "train"' in (run / "log.jsonl").read_text()
    )  # no training
    raw1, raw2 = rows["W-Net raw (argmax)"], out2["rows"]["W-Net raw (argmax)"]
    for key in ("sc_ods", "pri_ods", "vi_ods", "bdry_ods_f"):  # same weights, same raw scores
        assert raw2[key] == raw1[key], key
    assert cfg2.model.k == 9  # the caller's config is left alone; the model came from the checkpoint
    assert "K=4" in (tmp_path / "runs" / "pipe2" / "bsds500_results.md").read_text()
    # baselines do not depend on the W-Net: the second run reuses the first run's cached scores
    assert out2["rows"]["baseline: kmeans"] == rows["baseline: kmeans"]
    assert len(list((tmp_path / "runs" / "bsds_cache").glob("kmeans-*"))) == 1


def test_a_sigterm_after_training_stops_the_evaluation_between_batches(tmp_path, monkeypatch):
    """Post-processing and the benchmark can take an hour after training: a SIGTERM there must end
    the run at the next batch (exit code 143, one line naming the trained model kept), not be
    swallowed by the training loop's stop-after-the-step handler."""
    import os
    import signal

    from wnet.tasks import bsds as bsds_task
    from wnet.tasks.errors import Interrupted

    root = tmp_path / "BSDS500"
    write_fake_bsds(root, n_train=2, n_test=3)
    batches = []

    def signalled(*args, **kwargs):  # the first batch's post-processing receives the signal
        batches.append(len(args[0]))
        if len(batches) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    real = bsds_task.postprocess_many
    monkeypatch.setattr(bsds_task, "postprocess_many", signalled)
    cfg = load_config(None, ["task=bsds", f"out_dir={tmp_path / 'runs'}", "name=t", "data.name=bsds500",
                             f"data.root={root}", "data.image_size=32", "data.num_eval_images=1", "model.k=4",
                             "model.base_width=4", "train.iterations=2", "train.batch_size=2", "ncut.radius=3",
                             "crf.kind=torch", "crf.radius=3", "bsds.ucms=[merge]", "ucm=merge",
                             "bsds.baselines=[]", "bsds.workers=1", "wandb.mode=disabled"])  # fmt: skip
    with pytest.raises(Interrupted, match="stopped by SIGTERM during W-Net post-processing") as e:
        pipeline_main(cfg)
    last = tmp_path / "runs" / "t" / "last.pt"
    assert e.value.exit_code == 143 and f"checkpoint={last}" in str(e.value) and last.is_file()
    assert batches == [2]  # the second batch of the 3 test images never started
    assert not (tmp_path / "runs" / "t" / "bench").exists()  # nor did the benchmark
