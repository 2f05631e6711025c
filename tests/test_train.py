import json
from pathlib import Path

import pytest
import torch

from wnet import train as train_mod
from wnet.config import load_config
from wnet.runtime import load_checkpoint

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


def tiny_cfg(tmp_path, *extra):
    return load_config(None, [*TINY, f"out_dir={tmp_path}", *extra])


def test_one_alternating_step_lowers_both_losses():
    torch.manual_seed(0)
    cfg = load_config(None, [*TINY, "optim.lr=1e-3"])
    model = train_mod.build_wnet(cfg)
    train_set, _ = train_mod.build_unlabelled_data(cfg)
    x = torch.stack([train_set[i]["image"] for i in range(4)])
    batches = iter([(0, {"image": x})] * 2)
    opts = {
        "enc": torch.optim.Adam(model.u_enc.parameters(), 1e-3),
        "all": torch.optim.Adam(model.parameters(), 1e-3),
    }

    def losses():
        model.train()  # BatchNorm in batch-statistics mode, as during the step
        with torch.no_grad():
            probs, recon = model(x)
            return train_mod.ncut_loss(cfg, probs, x).item(), torch.nn.functional.mse_loss(recon, x).item()

    j0, r0 = losses()
    state = {"step": 0, "epoch": 0, "run_dir": Path(".")}

    class NullLog:
        def log(self, *a, **k):
            pass

    train_mod.train_steps(cfg, model, batches, opts, {}, torch.device("cpu"), state, NullLog(), until=1)
    j1, r1 = losses()
    assert state["step"] == 1
    assert j1 < j0, (j0, j1)
    assert r1 < r0, (r0, r1)


def test_main_writes_run_and_resumes(tmp_path):
    cfg = tiny_cfg(tmp_path, "name=smoke", "train.iterations=3", "train.ckpt_every=2")
    out = train_mod.main(cfg)
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
    train_mod.main(cfg2)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4, 5]
    assert load_checkpoint(run)["step"] == 5


def test_joint_mode_runs(tmp_path):
    out = train_mod.main(tiny_cfg(tmp_path, "name=joint", "train.mode=joint", "train.iterations=2"))
    assert out["after"]["ncut"] > 0


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path, "name=nan", "train.iterations=6", "train.ckpt_every=2")
    real = train_mod.ncut_loss
    calls = {"n": 0}

    def flaky(cfg_, probs, images):
        calls["n"] += 1
        j = real(cfg_, probs, images)
        # eval before training uses 1 call per held-out image (2); training step 3 is the 5th call
        return j * float("nan") if calls["n"] == 2 + 3 else j

    monkeypatch.setattr(train_mod, "ncut_loss", flaky)
    with pytest.raises(FloatingPointError, match="non-finite loss at step 3"):
        train_mod.main(cfg)
    ckpt = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["models"]["wnet"].values() if v.is_floating_point())


def test_wandb_offline_run_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")
    cfg = tiny_cfg(tmp_path, "name=wb", "train.iterations=2", "wandb.mode=offline")
    train_mod.main(cfg)
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")), "offline run has no .wandb data file"


def test_wandb_failure_does_not_stop_training(tmp_path, monkeypatch):
    import wandb

    def boom(*a, **k):
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", boom)
    with pytest.warns(UserWarning, match="W&B could not start"):
        out = train_mod.main(tiny_cfg(tmp_path, "name=wbfail", "train.iterations=1", "wandb.mode=online"))
    assert (Path(out["run_dir"]) / "last.pt").is_file()


def test_predict_with_mirror_padding_keeps_shapes_and_probabilities(tmp_path):
    cfg = tiny_cfg(tmp_path)
    torch.manual_seed(0)
    model = train_mod.build_wnet(cfg)
    x = torch.rand(1, 3, 37, 45)  # odd sizes, as BSDS's 321 x 481
    p0, r0 = train_mod.predict(model, x, cfg, torch.device("cpu"))
    p8, r8 = train_mod.predict(model, x, cfg, torch.device("cpu"), pad=8)
    assert p8.shape == p0.shape == (1, 4, 37, 45) and r8.shape == r0.shape == (1, 3, 37, 45)
    torch.testing.assert_close(p8.sum(1), torch.ones(1, 37, 45))  # still a softmax per pixel
    border = (p8 - p0).abs().amax(1)[0]  # (H, W)
    assert border[0].max() > 1e-4 and border[:, 0].max() > 1e-4  # the frame sees the mirror
    with pytest.raises(ValueError, match="pad"):
        train_mod.predict(model, x, cfg, torch.device("cpu"), pad=37)
