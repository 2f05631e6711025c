"""torchrun DDP on CPU (2 gloo processes): it equals gradient accumulation, it resumes exactly, it
writes from rank 0 only, and its evaluation equals one process's.

The reference for "DDP equals gradient accumulation" is written out here, independently of the
task code: one process, the same global batch as 2 micro-batches (rank r's share of the sampler),
each loss halved and back-propagated, one optimiser step. BatchNorm running statistics are left
out of the comparison: DDP broadcasts rank 0's buffers, accumulation updates them twice.
"""

import json
import re
import signal
import subprocess
import time

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    ENV,
    RUN,
    TINY,
    TORCHRUN,
    paired_overrides,
    run_cli,
    signal_during_training,
    write_fake_bsds,
    write_paired,
)

from wnet.datasets.sampling import EpochSampler, SeededItems
from wnet.evaluation import evaluate_labelled, scores_row
from wnet.inference import predict_labels
from wnet.losses import get_loss
from wnet.tasks import steps
from wnet.tasks.build import build_labelled, build_unet, build_unlabelled, build_wnet
from wnet.tasks.checkpoints import load_checkpoint
from wnet.tasks.runtime import seed_everything
from wnet.tasks.validate import load_config

RUN_PY = RUN[1]  # experiments/run.py, launched by torchrun
SGD = [
    "optim.name=sgd",
    "optim.lr=0.05",
    "optim.momentum=0.9",
    "train.threads=1",
    "train.channels_last=false",
]


def _torchrun(args, **kw):
    return run_cli([RUN_PY, *args], TORCHRUN, **kw)


def _micro_batches(cfg, dataset, step_index: int, per_rank: int):
    """Rank 0's and rank 1's batches of one step, as the 2-process run sees them (full batches only)."""
    items = SeededItems(dataset, cfg.train.seed)
    out = []
    for rank in (0, 1):
        sampler = EpochSampler(items, num_replicas=2, rank=rank, seed=cfg.train.seed)
        per_epoch = sampler.num_samples // per_rank
        sampler.set_position(step_index // per_epoch)
        at = step_index % per_epoch
        keys = list(sampler)[at * per_rank : (at + 1) * per_rank]
        out.append(torch.utils.data.default_collate([items[k] for k in keys]))
    return out


def _close(reference: dict, saved: dict, tol=1e-6):
    for k, v in reference.items():
        if "running_" in k or "num_batches_tracked" in k:
            continue  # BatchNorm buffers: rank 0's under DDP (see the module docstring)
        err = (v - saved[k]).abs().max().item()
        assert err <= tol, f"{k}: max abs difference {err:.3g}"


def test_unsupervised_ddp_equals_gradient_accumulation(tmp_path):
    args = [*TINY, *SGD, f"out_dir={tmp_path}", "name=ddp", "train.iterations=3", "train.batch_size=2"]
    r = _torchrun(args)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = load_config(None, args)
    seed_everything(cfg.train.seed)
    model = build_wnet(cfg.model)
    train_set, _ = build_unlabelled(cfg)
    opt_enc = torch.optim.SGD(model.u_enc.parameters(), lr=0.05, momentum=0.9)
    opt_all = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step in range(3):
        xs = [b["image"] for b in _micro_batches(cfg, train_set, step, 2)]
        opt_enc.zero_grad()
        for x in xs:  # (1) U_Enc on the soft N-Cut, accumulated over the two micro-batches
            (steps.ncut_loss(cfg.ncut, torch.softmax(model.encode(x), 1), x) / 2).backward()
        opt_enc.step()
        opt_all.zero_grad()
        for x in xs:  # (2) the whole W-Net on reconstruction
            (F.mse_loss(model(x)[1], x) / 2).backward()
        opt_all.step()
    _close(model.state_dict(), load_checkpoint(tmp_path / "ddp")["models"]["wnet"])
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert {"split": "run", "step": 0, "world_size": 2, "global_batch_size": 4}.items() <= log[0].items()
    assert "global batch 4" in (tmp_path / "ddp" / "config.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # rank 1 made no folder of its own


@pytest.mark.slow  # the unsupervised twin stays in the default suite
def test_supervised_ddp_equals_gradient_accumulation(tmp_path):
    root = write_paired(tmp_path / "data", n_train=8)
    args = [
        *paired_overrides(root, tmp_path / "runs"),
        *SGD,
        "name=sup",
        "train.iterations=3",
        "train.eval_every=3",
    ]
    r = _torchrun(args)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = load_config(None, args)
    seed_everything(cfg.train.seed)
    train_set = build_labelled(cfg, "train", train=True)
    model = build_unet(cfg.model, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = get_loss("ce", mode="multiclass")
    model.train()
    for step in range(3):
        opt.zero_grad()
        for b in _micro_batches(cfg, train_set, step, cfg.train.batch_size):
            (loss_fn(model(b["image"]), b["label"]) / 2).backward()
        opt.step()
    saved = load_checkpoint(tmp_path / "runs" / "sup")["models"]["unet"]
    _close(model.state_dict(), saved)
    # the 2-rank validation (each rank its share, confusion matrices summed) equals one process's
    model.load_state_dict(saved)
    val_set = build_labelled(cfg, "val", train=False)
    one = evaluate_labelled(lambda x: predict_labels(model, x, binary=False), val_set, 3, batch_size=1)
    log = [json.loads(line) for line in (tmp_path / "runs" / "sup" / "log.jsonl").read_text().splitlines()]
    final = next(r for r in log if r["split"] == "final")
    for key, value in scores_row(one["scores"]).items():
        assert final[key] == pytest.approx(value, abs=1e-12), key


def _cut_run(tmp_path) -> list[str]:
    """A 16-step 2-rank run checkpointing every 4 steps: the kill-and-resume tests' arguments."""
    return [
        *TINY,
        *SGD,
        f"out_dir={tmp_path}",
        "train.iterations=16",
        "train.ckpt_every=4",
        "train.batch_size=2",
    ]


def _cut(common, stderr=subprocess.PIPE):
    """What starts the run named ``cut`` under torchrun, in its own process group."""
    return lambda: subprocess.Popen(
        [*TORCHRUN, RUN_PY, *common, "name=cut"], env=ENV, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=stderr, text=True,
    )  # fmt: skip


@pytest.mark.slow  # two torchrun launches and a reference run
def test_ddp_killed_and_resumed_equals_uninterrupted(tmp_path):
    common = _cut_run(tmp_path)
    ref = _torchrun([*common, "name=ref"])
    assert ref.returncode == 0, ref.stderr[-3000:]
    # torchrun and both workers, as a node failure would
    signal_during_training(
        _cut(common, stderr=subprocess.DEVNULL), tmp_path / "cut" / "last.pt", 4, 16, signal.SIGKILL
    )
    cut = load_checkpoint(tmp_path / "cut")
    assert 4 <= cut["step"] < 16 and len(cut["rng_ranks"]) == 2
    again = _torchrun([*common, "name=cut", "resume=auto"])
    assert again.returncode == 0, again.stderr[-3000:]
    a, b = load_checkpoint(tmp_path / "ref"), load_checkpoint(tmp_path / "cut")
    assert a["step"] == b["step"] == 16
    for k, v in a["models"]["wnet"].items():
        assert torch.equal(v, b["models"]["wnet"][k]), k


@pytest.mark.slow  # three torchrun launches; the 1-process group SIGTERM test is in test_survive.py
def test_ddp_sigterm_to_the_process_group_then_resume_equals_uninterrupted(tmp_path):
    """SLURM's and ``kill -- -PGID``'s SIGTERM reaches torchrun and both ranks at once: every rank
    finishes its step, rank 0 writes last.pt at the step reached, and the resumed run is bit-exact."""
    common = _cut_run(tmp_path)
    ref = _torchrun([*common, "name=ref"])
    assert ref.returncode == 0, ref.stderr[-3000:]
    _, err = signal_during_training(_cut(common), tmp_path / "cut" / "last.pt", 4, 16, signal.SIGTERM)
    reached = [int(m) for m in re.findall(r"stopped by SIGTERM at step (\d+)", err)]
    cut = load_checkpoint(tmp_path / "cut")
    assert len(reached) == 1 and 4 <= reached[0] < 16, err[-3000:]  # one note, from rank 0
    assert cut["step"] == reached[0] and len(cut["rng_ranks"]) == 2
    assert "/wnet/" not in err  # no traceback through this package (torchrun prints its own SignalException)
    again = _torchrun([*common, "name=cut", "resume=auto"])
    assert again.returncode == 0, again.stderr[-3000:]
    a, b = load_checkpoint(tmp_path / "ref"), load_checkpoint(tmp_path / "cut")
    assert a["step"] == b["step"] == 16
    for k, v in a["models"]["wnet"].items():
        assert torch.equal(v, b["models"]["wnet"][k]), k


@pytest.mark.slow  # a torchrun launch killed mid-run
@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_ddp_sigterm_stops_all_ranks_with_one_checkpoint(tmp_path, sig):
    common = [*TINY, *SGD, f"out_dir={tmp_path}", "name=t", "train.iterations=400", "train.ckpt_every=1000"]
    proc = subprocess.Popen(
        [*TORCHRUN, RUN_PY, *common], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    log = tmp_path / "t" / "log.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.is_file() and '"train"' in log.read_text()):
        time.sleep(0.05)
    proc.send_signal(sig)  # torchrun forwards it to both workers
    _, err = proc.communicate(timeout=300)
    ckpt = load_checkpoint(tmp_path / "t")
    assert 1 <= ckpt["step"] < 400 and len(ckpt["rng_ranks"]) == 2
    assert err.count("stopped by SIGTERM") == 1, err[-3000:]
    # torchrun's own exit code (the README's SIGTERM row): its agent turns the signal into a
    # SignalException after the ranks have stopped, prints its traceback and exits 1
    assert proc.returncode == 1 and "SignalException" in err, (proc.returncode, err[-3000:])


@pytest.mark.slow  # a torchrun pair and one process
def test_bsds_inference_split_across_ranks_gives_the_one_process_table(tmp_path):
    """Prediction, CRF and hierarchy run on each rank's share of the images; rank 0 gathers and scores."""
    root = tmp_path / "BSDS500"
    write_fake_bsds(root, n_test=3)
    model_args = [*TINY, "train.threads=1", f"out_dir={tmp_path}", "name=w", "train.iterations=2"]
    made = subprocess.run([*RUN, *model_args], capture_output=True, text=True, env=ENV)
    assert made.returncode == 0, made.stderr[-2000:]
    args = [
        "task=bsds", "data.name=bsds500", f"data.root={root}", f"checkpoint={tmp_path / 'w' / 'last.pt'}",
        f"out_dir={tmp_path}", "crf.kind=torch", "crf.radius=3", "bsds.nthresh=5", "bsds.baselines=[]",
        "bsds.workers=1", "train.threads=1", "ncut.radius=3",
    ]  # fmt: skip
    one = subprocess.run([*RUN, *args, "name=one"], capture_output=True, text=True, env=ENV)
    two = _torchrun([*args, "name=two"])
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    table = lambda name: (tmp_path / name / "bsds500_results.csv").read_text()  # noqa: E731
    assert table("one") == table("two") and "W-Net + CRF + hierarchy" in table("two")


@pytest.mark.slow  # a torchrun pair and one process: over a minute on a busy 2-core machine
def test_step_0_heldout_scores_under_torchrun_equal_one_process_s(tmp_path):
    """Each rank seeds its model with train.seed + rank; the step-0 evaluation must score rank 0's
    weights, which every rank trains (it ran before DDP copied them: 0.2797 against 0.2998)."""
    args = [*TINY, *SGD, f"out_dir={tmp_path}", "train.iterations=1", "data.num_eval_images=4"]
    one, two = run_cli([*args, "name=one"]), _torchrun([*args, "name=two"])
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]

    def step0(name):
        log = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        return next(r for r in log if r["split"] == "eval" and r["step"] == 0)

    a, b = step0("one"), step0("two")
    for key in ("ncut", "recon"):  # summed over ranks in another order: equal up to rounding
        assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key
