"""Regenerate every figure the README and docs/ quote, or check that main still produces them.

    python experiments/reproduce.py                      # every job; writes docs/results/, then the tables
    python experiments/reproduce.py --only compare_isbi  # one job (repeat --only for several)
    python experiments/reproduce.py --check              # rerun into a temporary folder, compare, print the differences
    python experiments/reproduce.py --render             # only re-render the README and docs/ tables from docs/results/
    make reproduce / make reproduce-check                # the same, all jobs

Each job runs the README's own commands (learned rows over ``--seeds``, 3 by default) and writes
one results file under ``docs/results/`` (CSV for tables, JSON for benchmarks) with a ``.meta.json``
beside it (date, commit, command lines, wall time, machine). The tables of the README and of
docs/*.md sit between ``<!-- reproduce:NAME[:VIEW] -->`` markers and are rendered from those files,
so every number has one source. ``--check`` compares deterministic figures exactly; timings are machine-dependent, so it
prints their ratio to the stored figure and never fails on them. The ``bsds500_cpu`` job also exports
seed 0's model as the shipped weights file (``wnet/weights/bsds500_cpu.pt``) and scores that file on
the first 5 val images (``docs/results/bsds500_cpu_val5.csv``, what ``tests/test_pretrained.py``
reruns); ``--check`` compares both with the shipped ones, and docs/model_card.md is re-rendered.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from wnet import zoo
from wnet.tasks import model_card
from wnet.tasks import results as tables

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, str(ROOT / "experiments" / "run.py")]
# Training is bitwise deterministic only for a fixed set of CPU kernels. oneDNN (convolutions) and ATen pick
# AVX-512 kernels where the CPU has them, and those round differently: on an AVX-512 machine the quick run's
# N-Cut ended at 2.98 against 3.22 on AVX2 machines. So the jobs cap both at AVX2 (a no-op on CPUs without
# AVX-512). That pins most machines, not all: MKL's BLAS also rounds by machine (docs/reproducing.md).
CPU_KERNELS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
ENV = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **CPU_KERNELS}


# The jobs whose learned rows run once per seed, with experiments/configs/<job>.yaml: job -> data folder
SEEDED = {"bsds500_cpu": "BSDS500", "compare_camvid": "CamVid", "compare_isbi": "isbi2012"}


def job_commands(
    name: str, data: Path, out: Path, seeds: list[int], gpb_cache: Path | None = None
) -> list[list[str]]:
    """The command lines of one job (one per seed for learned tables); bsds500_cpu keeps each test
    image's gPb in ``gpb_cache`` (default ``out``'s sibling ``gpb_cache``)."""
    if name in SEEDED:
        args = [
            f"--config={ROOT / 'experiments' / 'configs' / f'{name}.yaml'}",
            f"data.root={data / SEEDED[name]}",
        ]
        cmds = [[*RUN, *args, f"out_dir={out}", f"name={name}-s{s}", f"train.seed={s}"] for s in seeds]
        if name == "bsds500_cpu":  # the baselines are deterministic: scored once, in seed 0's run
            cmds = [c if s == 0 else [*c, "bsds.baselines=[]"] for c, s in zip(cmds, seeds, strict=True)]
            # each test image's gPb (keyed by its content and the gPb settings) outlives the job folder:
            # a later sitting reuses it (a --check starts with an empty one unless given --gpb-cache)
            cache = gpb_cache or out.parent / "gpb_cache"
            cmds = [[*c, f"bsds.gpb_cache={cache}"] for c in cmds]
        return cmds
    if name == "quick":
        return [[*RUN, f"out_dir={out}", "name=quick", "train.threads=1"]]
    bench = ROOT / "experiments"
    return {
        "canny_owt_test": [[sys.executable, str(bench / "owt_val.py"), "--data", str(data / "BSDS500"), "--split", "test",
                            "--rows", "canny", "--workers", "2", "--out", str(out / "canny_owt_test")]],
        "baseline_scales": [[sys.executable, str(bench / "baseline_scales.py"), "--data", str(data / "BSDS500"),
                             "--max-images", "50", "--workers", "2", "--json", str(out / "bench.json")]],
        "bench_ncut": [[sys.executable, str(bench / "bench_ncut.py"), "--threads", "1", "--json", str(out / "bench.json")]],
        "bench_losses": [[sys.executable, str(bench / "bench_losses.py"), "--threads", "1", "--json",
                          str(out / "bench.json")]],
        "bench_crf": [[sys.executable, str(bench / "bench_crf.py"), "--images", str(data / "BSDS500" / "images" / "val"),
                       "--max-images", "20", "--threads", "1", "--hierarchy", "--json", str(out / "bench.json")]],
        "bench_bsds": [[sys.executable, str(bench / "bench_bsds.py"), "--data", str(data / "BSDS500"), "--workers", "2",
                        "--json", str(out / "bench.json")]],
        "bench_train": [[sys.executable, str(bench / "bench_train.py"), "--scale", "quick", "--steps", "20", "--json",
                         str(out / "bench.json")]],
        "bench_ddp": [[sys.executable, str(bench / "bench_train.py"), "--ddp", "--json", str(out / "bench.json")]],
        "bench_segment": [[sys.executable, str(bench / "bench_segment.py"), "--data", str(data / "BSDS500"),
                           "--agreement", "5", "--json", str(out / "bench.json")]],
    }[name]  # fmt: skip


def val5_command(data_root: Path, weights: Path, out: Path) -> list[str]:
    """``task=bsds`` with a weights file on the first 5 BSDS500 val images (no baselines, no gPb rows)."""
    return [*RUN, f"--config={ROOT / 'experiments' / 'configs' / 'bsds500_cpu.yaml'}", f"data.root={data_root}",
            "task=bsds", f"checkpoint={weights}", "bsds.split=val", "bsds.max_images=5", "bsds.baselines=[]",
            "bsds.ucms=[merge,owt]",  # the pipeline's own hierarchies: no gPb
            f"out_dir={out}", "name=pretrained-val5", "overwrite=true"]  # fmt: skip


def after_commands(name: str, data: Path, out: Path, seeds: list[int]) -> list[list[str]]:
    """Run once the job's seeds are done: bsds500_cpu exports seed 0's model and scores the file."""
    if name != "bsds500_cpu" or 0 not in seeds:
        return []
    weights = out / "pretrained" / f"{model_card.NAME}.pt"
    export = ROOT / "experiments" / "export_pretrained.py"
    return [[sys.executable, str(export), str(out / "bsds500_cpu-s0" / "last.pt"), str(weights)],
            val5_command(data / "BSDS500", weights, out)]  # fmt: skip


JOBS = [
    "quick",
    "compare_isbi",
    "compare_camvid",
    "bsds500_cpu",
    "canny_owt_test",
    "baseline_scales",
    "bench_ncut",
    "bench_losses",
    "bench_crf",
    "bench_bsds",
    "bench_train",
    "bench_ddp",
    "bench_segment",
]


def _run(cmd: list[str], log: Path) -> float:
    t0 = time.time()
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=ENV, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} exited {r.returncode}; see {log}")
    return time.time() - t0


def _shown(cmd: list[str]) -> str:
    """A command line as a user would type it in the repository root."""
    return " ".join(cmd).replace(sys.executable, "python").replace(f"{ROOT}/", "")


def _commit() -> str:
    """HEAD, marked when code the figures depend on (wnet/, experiments/, requirements) has local changes."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    paths = ["wnet", "experiments", "requirements.txt", "pyproject.toml"]
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", *paths], capture_output=True, text=True
    ).stdout
    return head + (" with local changes" if dirty.strip() else "")


def _machine() -> str:
    """Host, cores, CPU model and the kernel set the jobs' torch runs: a figure depends on all of them."""
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():  # Linux: the model, and whether the CPU could run AVX-512 kernels were they not capped
        text = info.read_text()
        models = [
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")
        ]
        cpu = (models[0] if models else cpu) + (" with AVX-512" if " avx512f" in text else "")
    return f"{platform.node()}, {os.cpu_count()} cores, {cpu}, torch kernels {_torch_kernels()}"


def _torch_kernels() -> str:
    """The CPU kernel set (AVX2, AVX512, ...) that torch picks in the jobs' environment."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    return out.stdout.strip() or "unknown"


def _clear(out: Path, name: str, seeds: list[int], resume: bool = False) -> list[Path]:
    """Empty what this sitting writes in ``out``, and return its commands' log files. A seeded job
    clears only the runs of ``seeds`` (and seed 0's exported model): an earlier sitting's other
    seeds keep their run folders; with ``resume`` it keeps its own too, for them to continue.
    Any other job starts from an empty folder."""
    if name in SEEDED:
        mine = [f"{name}-s{s}" for s in seeds] + (["pretrained", "pretrained-val5"] if 0 in seeds else [])
        for folder in [] if resume else mine:
            shutil.rmtree(out / folder, ignore_errors=True)
        logs = [out / f"log-s{s}.txt" for s in seeds]
    else:
        shutil.rmtree(out, ignore_errors=True)
        logs = [out / "log0.txt"]
    out.mkdir(parents=True, exist_ok=True)
    return logs


def _resumed(out: Path, name: str, seeds: list[int]) -> dict[str, int]:
    """The runs of ``seeds`` that a resumed sitting continues: run folder -> the step of its last.pt."""
    import torch

    found = {}
    for s in seeds:
        last = out / f"{name}-s{s}" / "last.pt"
        if last.is_file():
            found[last.parent.name] = int(torch.load(last, map_location="cpu", weights_only=False)["step"])
    return found


def run_job(
    name: str, data: Path, work: Path, seeds: list[int], jobs: int, gpb_cache: Path | None = None,
    resume: bool = False,
) -> dict:  # fmt: skip
    """Run one job's commands (``jobs`` at a time) in ``work/name``; returns its meta record.

    With ``resume`` (seeded jobs only) each seed's run continues from its ``last.pt`` in ``work``
    (``resume=auto``: bit for bit what the interrupted run would have done) instead of starting
    over; the meta lists the runs resumed and the step each was at."""
    if resume and name not in SEEDED:
        raise SystemExit(
            f"error: --resume continues the runs of a seeded job ({', '.join(SEEDED)}), not {name}"
        )
    out = work / name
    logs = _clear(out, name, seeds, resume)
    resumed = _resumed(out, name, seeds) if resume else {}
    cmds = job_commands(name, data, out, seeds, gpb_cache)
    cmds = [[*c, "resume=auto"] for c in cmds] if resume else cmds
    commit = _commit()
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        seconds = list(pool.map(lambda c_log: _run(*c_log), zip(cmds, logs, strict=True)))
    after = after_commands(name, data, out, seeds)
    seconds += [_run(c, out / f"log_after{i}.txt") for i, c in enumerate(after)]
    cmds = cmds + after
    return {
        "job": name, "date": datetime.date.today().isoformat(), "commit": commit, "wall_s": round(time.time() - t0, 1),
        "command_s": [round(s, 1) for s in seconds], "commands": [_shown(c) for c in cmds], "seeds": seeds if name in SEEDED else [],
        "machine": _machine(), **({"resumed": resumed} if resume else {}),
    }  # fmt: skip


def collect(name: str, work: Path, dest: Path, meta: dict, seeds: list[int]) -> None:
    """Turn a job's run folders into ``dest/<name>.csv`` or ``.json`` (+ ``.meta.json``, figures)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = work / name
    if name in tables.JSON_JOBS:  # its command wrote one JSON file
        shutil.copy(out / "bench.json", dest / f"{name}.json")
    else:
        tables.collect(name, out, dest, seeds)
        meta = tables.merged_meta(meta, dest / f"{name}.meta.json", seeds) if name in SEEDED else meta
    val5 = out / "pretrained-val5" / "bsds500_results.csv"
    # only a sitting that ran seed 0 made the export: an older one left in ``work`` is not this sitting's
    if name == "bsds500_cpu" and 0 in seeds and val5.is_file():
        shutil.copy(val5, dest / f"{model_card.VAL5}.csv")
        if dest.resolve() == tables.RESULTS.resolve():  # the real refresh also ships the model
            shutil.copy(out / "pretrained" / f"{model_card.NAME}.pt", zoo.pretrained_path(model_card.NAME))
    (dest / f"{name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def same_weights(fresh: Path) -> list[str]:
    """A MISMATCH line unless the exported weights equal the shipped file's, tensor for tensor."""
    import torch

    shipped = zoo.pretrained_path(model_card.NAME)
    if not shipped.is_file():
        return [f"MISMATCH {shipped}: no shipped weights file"]
    a, b = zoo.read_weights(shipped)["models"]["wnet"], zoo.read_weights(fresh)["models"]["wnet"]
    bad = [k for k in a if k not in b or not torch.equal(a[k], b[k])]
    return (
        [f"MISMATCH {shipped}: {len(bad)} tensors differ from the fresh export ({', '.join(bad[:3])})"]
        if bad
        else []
    )


def check(
    names: list[str], data: Path, seeds: list[int], jobs: int, gpb_cache: Path | None = None,
    work: Path | None = None, resume: bool = False,
) -> int:  # fmt: skip
    """Rerun into a temporary folder (or ``work``, kept) and compare with docs/results; returns the
    number of mismatches. With ``resume`` the check continues its interrupted runs in ``work``."""
    bad, tmp = 0, work or Path(tempfile.mkdtemp(prefix="reproduce-check-"))
    fresh = tmp / "results"
    for name in names:
        try:
            meta = run_job(name, data, tmp / "work", seeds, jobs, gpb_cache, resume)
        except SystemExit:  # a command failed: keep its log, which the error message names
            print(f"reproduce --check: {name} failed; its runs and logs are kept in {tmp}", file=sys.stderr)
            raise
        collect(name, tmp / "work", fresh, meta, seeds)
        diffs = tables.compare(name, tables.RESULTS, fresh, seeds if name in SEEDED else None)
        if (fresh / f"{model_card.VAL5}.csv").is_file():
            diffs += tables.compare(model_card.VAL5, tables.RESULTS, fresh)
            diffs += same_weights(tmp / "work" / name / "pretrained" / f"{model_card.NAME}.pt")
        bad += sum(1 for d in diffs if d.startswith("MISMATCH"))
        only = f", seeds {', '.join(map(str, seeds))}" if name in SEEDED else ""
        print(f"== {name} ({meta['wall_s'] / 60:.1f} min{only})")
        print(f"   machine: stored on {_stored_machines(name, seeds)}; now on {meta['machine']}")
        if gpb_cache and name == "bsds500_cpu":  # what this check did not recompute
            print(f"   gPb of the test images read from {gpb_cache}, not recomputed")
        print("\n".join(diffs) if diffs else "   every deterministic figure matches")
    if bad:  # the runs' logs are what a mismatch is diagnosed from
        print(f"reproduce --check: the mismatching runs and their logs are kept in {tmp}", file=sys.stderr)
    elif work is None:
        shutil.rmtree(tmp)
    return bad


def _stored_machines(name: str, seeds: list[int]) -> str:
    """The machines of the stored sittings that made ``seeds``' rows (a seeded job may hold several)."""
    path = tables.RESULTS / f"{name}.meta.json"
    if not path.exists():
        return "(none stored)"
    meta = json.loads(path.read_text())
    if name not in SEEDED:
        return meta["machine"]
    made = {s: tables.seed_sitting(meta, s)["machine"] for s in seeds}
    return "; ".join(
        f"seed {', '.join(str(s) for s in made if made[s] == m)}: {m}" for m in dict.fromkeys(made.values())
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=JOBS, help="run only this job (repeatable)")
    ap.add_argument("--check", action="store_true", help="rerun and compare with docs/results; write nothing")
    ap.add_argument(
        "--render", action="store_true", help="only render the README and docs/ tables from docs/results"
    )
    ap.add_argument(
        "--data",
        default=os.environ.get("WNET_DATA", ""),
        help="folder with BSDS500/, CamVid/, isbi2012/ (default: $WNET_DATA)",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train.seed of the learned rows")
    ap.add_argument("--jobs", type=int, default=2, help="commands run at once (each on one torch thread)")
    ap.add_argument(
        "--work",
        type=Path,
        help="where the runs go (default runs/reproduce; with --check a temporary folder, removed if all match)",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue the seeded runs of an interrupted sitting (or of a --check given --work) from their last.pt",
    )
    ap.add_argument(
        "--gpb-cache",
        type=Path,
        help="bsds500_cpu's folder of test-image gPb (default: WORK/gpb_cache; a --check computes its own "
        "unless given one, and then checks only what follows gPb)",
    )
    args = ap.parse_args(argv)
    names, data = args.only or JOBS, Path(args.data)
    if not args.render and not args.data:
        raise SystemExit(
            "error: no data folder: give --data DIR or set WNET_DATA (a folder holding BSDS500/, CamVid/, isbi2012/)"
        )
    if not args.render and not data.is_dir():
        raise SystemExit(
            f"error: data folder {data} does not exist (give --data DIR holding BSDS500/, CamVid/, isbi2012/)"
        )
    if args.resume and args.check and args.work is None:
        raise SystemExit("error: --check --resume needs --work DIR, the folder of the interrupted check")
    t0 = time.time()
    if args.check:
        bad = check(names, data, args.seeds, args.jobs, args.gpb_cache, args.work, args.resume)
        print(
            f"reproduce --check: {bad} mismatching deterministic figures; {(time.time() - t0) / 60:.1f} min in all"
        )
        return 1 if bad else 0
    if not args.render:
        work = args.work or ROOT / "runs" / "reproduce"
        for name in names:
            meta = run_job(name, data, work, args.seeds, args.jobs, args.gpb_cache, args.resume)
            collect(name, work, tables.RESULTS, meta, args.seeds)
            print(f"{name}: {meta['wall_s'] / 60:.1f} min")
    tables.render_docs(ROOT, tables.RESULTS)
    if zoo.pretrained_path(model_card.NAME).is_file():
        model_card.render()
    print(f"README and docs/ tables rendered from docs/results; {(time.time() - t0) / 60:.1f} min in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
