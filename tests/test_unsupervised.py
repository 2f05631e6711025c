"""The unsupervised task: Algorithm 1's step, a whole run, resume, joint mode, failures, W&B."""

import json
from pathlib import Path

import pytest
import torch
from helpers import TINY

from wnet.inference import predict
from wnet.tasks import steps, unsupervised
from wnet.tasks.build import build_unlabelled, build_wnet
from wnet.tasks.loop import TrainState, train_loop
from wnet.tasks.runtime import load_checkpoint, open_run
from wnet.tasks.validate import load_config


def tiny_cfg(tmp_path, *extra):
    return load_config(None, [*TINY, f"out_dir={tmp_path}", *extra])


def test_one_alternating_step_lowers_both_losses():
    torch.manual_seed(0)
    cfg = load_config(None, [*TINY, "optim.lr=1e-3"])
    model = build_wnet(cfg.model)
    train_set, _ = build_unlabelled(cfg)
    x = torch.stack([train_set[i]["image"] for i in range(4)])
    opts = {
        "enc": torch.optim.Adam(model.u_enc.parameters(), 1e-3),
        "all": torch.optim.Adam(model.parameters(), 1e-3),
    }

    def losses():
        model.train()  # BatchNorm in batch-statistics mode, as during the step
        with torch.no_grad():
            probs, recon = model(x)
            return steps.ncut_loss(cfg.ncut, probs, x).item(), torch.nn.functional.mse_loss(recon, x).item()

    j0, r0 = losses()
    enc_before = [p.detach().clone() for p in model.u_enc.parameters()]
    out = steps.wnet_step(cfg, model, opts, torch.device("cpu"))({"image": x})
    j1, r1 = losses()
    assert (
        out["ncut"] == pytest.approx(j0, rel=1e-5) and out["recon"] < r0
    )  # step 2 runs after step 1's update
    assert j1 < j0, (j0, j1)
    assert r1 < r0, (r0, r1)
    assert all(not torch.equal(a, b) for a, b in zip(enc_before, model.u_enc.parameters(), strict=True))


def test_main_writes_run_and_resumes(tmp_path):
    cfg = tiny_cfg(tmp_path, "name=smoke", "train.iterations=3", "train.ckpt_every=2")
    out = unsupervised.main(cfg)
    run = Path(out["run_dir"])
    assert (run / "config.yaml").is_file() and (run / "last.pt").is_file()
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == [1, 2, 3]
    assert {"ncut", "recon", "lr"} <= set(records[1])
    evals = [r for r in records if r["split"] == "eval"]
    assert len(evals) == 2 and "matched_pixel_accuracy" in evals[-1]
    assert 0 < evals[-1]["matched_pixel_accuracy"] <= 1
    assert len(list((run / "samples").glob("*.png"))) == 2
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 3 and ckpt["config"]["model"]["k"] == 4
    assert set(ckpt["optimizers"]) == {"enc", "all"}

    # resume continues from step 3 to 5 with the same run folder
    cfg2 = tiny_cfg(tmp_path, "name=smoke", "train.iterations=5", f"resume={run / 'last.pt'}")
    unsupervised.main(cfg2)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4, 5]
    assert load_checkpoint(run)["step"] == 5


def test_periodic_eval_scores_mid_run_and_leaves_training_unchanged(tmp_path):
    # train.eval_every=2 adds held-out scores at steps 2 and 4; the weights after 5 steps equal
    # those of a run without periodic evaluation (evaluation puts the random state back)
    out = {}
    for every in (0, 2):
        cfg = tiny_cfg(tmp_path, f"name=e{every}", "train.iterations=5", f"train.eval_every={every}")
        out[every] = unsupervised.main(cfg)
    records = [json.loads(line) for line in (Path(out[2]["run_dir"]) / "log.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [0, 2, 4, 5]
    assert all({"ncut", "recon", "matched_miou"} <= set(r) for r in evals)
    assert "train_time" in evals[-1] and "train_time" not in evals[1]
    a, b = (out[e]["model"].state_dict() for e in (0, 2))
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert out[0]["after"]["ncut"] == out[2]["after"]["ncut"]


def test_joint_mode_lowers_the_weighted_objective_with_one_optimiser(tmp_path):
    cfg = tiny_cfg(
        tmp_path, "name=joint", "train.mode=joint", "train.iterations=12", "train.recon_weight=4.0"
    )
    out = unsupervised.main(cfg)
    before = out["before"]["ncut"] + 4.0 * out["before"]["recon"]
    after = out["after"]["ncut"] + 4.0 * out["after"]["recon"]
    assert after < before, (before, after)
    ckpt = load_checkpoint(tmp_path / "joint" / "last.pt")
    assert set(ckpt["optimizers"]) == {"all"} and ckpt["step"] == 12  # joint mode never builds U_Enc's own


def test_loop_stops_on_a_non_finite_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    """Real W-Net steps, the third reporting a NaN loss: the step-2 checkpoint stays intact."""
    cfg = tiny_cfg(tmp_path, "name=nan", "train.iterations=6", "train.ckpt_every=2")
    x = build_unlabelled(cfg)[0][0]["image"][None].repeat(2, 1, 1, 1)  # (2, 3, 32, 32)
    batches = [{"image": x, "i": i} for i in range(1, 7)]
    with open_run(cfg) as run:
        parts = unsupervised.build_parts(cfg, run.device)
        real = steps.wnet_step(cfg, parts.models["wnet"], parts.optimizers, run.device)

        def step(batch):
            out = real(batch)
            return {**out, "ncut": float("nan")} if batch["i"] == 3 else out

        with pytest.raises(FloatingPointError, match="non-finite loss at step 3"):
            train_loop(run, parts, step, batches, TrainState())
    ckpt = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["models"]["wnet"].values() if v.is_floating_point())


def test_diverging_run_stops_with_a_named_step(tmp_path):
    """What a user sees with a learning rate far too high: a FloatingPointError naming the step."""
    cfg = tiny_cfg(tmp_path, "name=diverge", "train.iterations=40", "optim.name=sgd", "optim.lr=1e9")
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step \d+"):
        unsupervised.main(cfg)


def test_wandb_offline_run_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")
    cfg = tiny_cfg(tmp_path, "name=wb", "train.iterations=2", "wandb.mode=offline")
    unsupervised.main(cfg)
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")), "offline run has no .wandb data file"


def test_wandb_failure_does_not_stop_training(tmp_path, monkeypatch):
    import wandb

    def boom(*a, **k):
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", boom)
    with pytest.warns(UserWarning, match="W&B could not start"):
        out = unsupervised.main(tiny_cfg(tmp_path, "name=wbfail", "train.iterations=1", "wandb.mode=online"))
    assert (Path(out["run_dir"]) / "last.pt").is_file()


def test_predict_with_mirror_padding_keeps_shapes_and_probabilities(tmp_path):
    cfg = tiny_cfg(tmp_path)
    torch.manual_seed(0)
    model = build_wnet(cfg.model)
    x = torch.rand(1, 3, 37, 45)  # odd sizes, as BSDS's 321 x 481
    p0, r0 = predict(model, x)
    p8, r8 = predict(model, x, pad=8)
    assert p8.shape == p0.shape == (1, 4, 37, 45) and r8.shape == r0.shape == (1, 3, 37, 45)
    torch.testing.assert_close(p8.sum(1), torch.ones(1, 37, 45))  # still a softmax per pixel
    border = (p8 - p0).abs().amax(1)[0]  # (H, W)
    assert border[0].max() > 1e-4 and border[:, 0].max() > 1e-4  # the frame sees the mirror
    with pytest.raises(ValueError, match="pad"):
        predict(model, x, pad=37)


def test_labelled_heldout_scores_are_the_split_level_hungarian_match(tmp_path):
    """On labelled data the held-out matched mIoU is task=compare's: one matching on the split's
    confusion matrix (what the matched-mIoU sweep maximises)."""
    from helpers import paired_overrides, write_paired

    from wnet.evaluation import evaluate_labelled

    root = write_paired(tmp_path / "data")
    args = [o for o in paired_overrides(root, tmp_path / "runs") if o != "task=supervised"]
    cfg = load_config(None, [*args, "task=unsupervised", "model.k=4", "train.iterations=2"])
    out = unsupervised.main(cfg)
    _, held = build_unlabelled(cfg)
    ref = evaluate_labelled(lambda x: predict(out["model"], x)[0].argmax(1), held, 3, None, num_clusters=4)
    assert out["after"]["matched_miou"] == pytest.approx(float(ref["scores"]["miou"]), abs=1e-12)
    assert out["after"]["matched_pixel_accuracy"] == pytest.approx(float(ref["scores"]["pixel_accuracy"]))
    assert 0 < out["after"]["matched_miou"] <= 1


def test_a_resumed_run_reports_the_training_time_of_all_its_sittings(tmp_path):
    """train_time is kept in every checkpoint and added to on resume: a run interrupted at step 3
    and resumed reports at least the time its first sitting had trained, and a run resumed once
    finished (reproduce.py --resume after the evaluation was cut) reports the finished run's time
    exactly, not the few milliseconds of its own empty loop."""
    first = unsupervised.main(tiny_cfg(tmp_path, "name=t", "train.iterations=3"))
    run = Path(first["run_dir"])
    at3 = load_checkpoint(run / "last.pt")["train_time"]
    assert at3 == first["train_time"] > 0
    more = unsupervised.main(tiny_cfg(tmp_path, "name=t", "train.iterations=5", f"resume={run / 'last.pt'}"))
    assert more["train_time"] > at3 and load_checkpoint(run / "last.pt")["train_time"] == more["train_time"]
    again = unsupervised.main(tiny_cfg(tmp_path, "name=t", "train.iterations=5", f"resume={run / 'last.pt'}"))
    assert again["train_time"] == more["train_time"]
    evals = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["train_time"] for r in evals if r["split"] == "eval" and "train_time" in r][-1] == more[
        "train_time"
    ]
