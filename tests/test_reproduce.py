"""wnet/tasks/results.py and experiments/reproduce.py: per-seed results, mean ± std tables, claims beyond the spread,
exact comparison of deterministic figures, README blocks rendered between markers."""

import csv
import json
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import ROOT, load_script

from wnet.tasks import results as rt

reproduce = load_script("reproduce")

META = {"date": "2026-11-30", "commit": "abc1234", "wall_s": 60.0, "seeds": [0, 1, 2], "machine": "test box"}


def _comparison(folder, seed, wnet_miou, unet_miou):
    folder.mkdir(parents=True)
    with open(folder / "comparison.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "loss", *rt.COMPARE, "train_time_s"])
        w.writerow(["wnet", "ncut+recon", *[f"{wnet_miou:.4f}"] * 5, "10.0"])
        w.writerow(["unet-ce", "ce", *[f"{unet_miou:.4f}"] * 5, "5.0"])


@pytest.fixture
def results(tmp_path):
    runs = tmp_path / "work" / "compare_isbi"
    for seed, (a, b) in enumerate([(0.50, 0.70), (0.52, 0.72), (0.54, 0.74)]):
        _comparison(runs / f"compare_isbi-s{seed}", seed, a, b)
    dest = tmp_path / "results"
    dest.mkdir()
    rt.collect("compare_isbi", runs, dest, [0, 1, 2])
    (dest / "compare_isbi.meta.json").write_text(json.dumps(META))
    return dest


def test_collect_keeps_every_seed(results):
    rows = list(csv.DictReader(open(results / "compare_isbi.csv")))
    assert [(r["method"], r["seed"]) for r in rows] == [
        (m, str(s)) for s in range(3) for m in ("wnet", "unet-ce")
    ]


def test_render_shows_mean_and_std_and_a_claim_beyond_the_spread(results):
    text = rt.render("compare_isbi", results)
    assert "| wnet | ncut+recon | 0.5200 ± 0.0200 |" in text  # mean of .50 .52 .54, sample std .02
    assert "1 of 1 supervised rows beat W-Net" in text
    assert "2026-11-30 at commit abc1234" in text


@pytest.mark.parametrize(
    ("a", "b", "col", "expected"),
    [
        ([0.70, 0.72, 0.74], [0.50, 0.52, 0.54], "miou", True),
        ([0.70, 0.80, 0.90], [0.60, 0.70, 0.80], "miou", False),  # overlapping intervals: no claim
        ([1.9, 2.0, 2.1], [2.5, 2.6, 2.7], "vi_ods", True),  # VI: lower is better
        ([2.5, 2.6, 2.7], [1.9, 2.0, 2.1], "vi_ods", False),
    ],
)
def test_beats_requires_disjoint_intervals(a, b, col, expected):
    assert rt.beats(a, b, col) is expected


def test_compare_is_exact_for_scores_and_lenient_for_timings(results, tmp_path):
    assert [d for d in rt.compare("compare_isbi", results, results) if d.startswith("MISMATCH")] == []
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    rows = list(csv.DictReader(open(results / "compare_isbi.csv")))
    rows[0]["miou"], rows[1]["train_time_s"] = "0.5001", "99.0"  # one score moves; one timing moves
    rt._write_rows(fresh / "compare_isbi.csv", rows)
    diffs = rt.compare("compare_isbi", results, fresh)
    assert [d for d in diffs if d.startswith("MISMATCH")] == [
        "MISMATCH compare_isbi ('wnet', '0') miou: stored 0.5000, now 0.5001"
    ]
    assert any(d.strip().startswith("timing ('unet-ce', '0') train_time_s") for d in diffs)


def test_readme_blocks_are_rendered_between_markers(results, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- reproduce:compare_isbi -->\nold table\n<!-- /reproduce:compare_isbi -->\n"
                      "<!-- reproduce:bsds500_cpu -->\nkept\n<!-- /reproduce:bsds500_cpu -->\n")  # fmt: skip
    rt.render_markdown(readme, results)
    text = readme.read_text()
    assert "old table" not in text and "0.5200 ± 0.0200" in text
    assert "kept" in text  # no results for bsds500_cpu yet: its block is left alone


def test_bsds_baselines_are_scored_once_in_seed_0_s_run(tmp_path):

    cmds = reproduce.job_commands("bsds500_cpu", tmp_path, tmp_path / "out", [0, 1, 2])
    assert [[a for a in c if a.startswith(("train.seed", "bsds.baselines"))] for c in cmds] == [
        ["train.seed=0"],
        ["train.seed=1", "bsds.baselines=[]"],
        ["train.seed=2", "bsds.baselines=[]"],
    ]
    later = reproduce.job_commands("bsds500_cpu", tmp_path, tmp_path / "out", [1, 2])  # a later sitting
    assert all("bsds.baselines=[]" in c for c in later)
    # gPb of the test images is kept beside the job folder, for later sittings, or where --gpb-cache says
    assert all(f"bsds.gpb_cache={tmp_path / 'gpb_cache'}" in c for c in [*cmds, *later])
    given = reproduce.job_commands("bsds500_cpu", tmp_path, tmp_path / "out", [1], tmp_path / "kept")
    assert f"bsds.gpb_cache={tmp_path / 'kept'}" in given[0]
    isbi = reproduce.job_commands("compare_isbi", tmp_path, tmp_path / "out", [0, 1, 2])
    assert not any("bsds.baselines=[]" in c for c in isbi)


def _bsds_run(folder, wnet_pri, with_baseline):
    folder.mkdir(parents=True)
    with open(folder / "bsds500_results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", *rt.BSDS, "source"])
        w.writerow(["W-Net + CRF + OWT-UCM", *[f"{wnet_pri:.4f}"] * len(rt.BSDS), "computed"])
        if with_baseline:
            w.writerow(["baseline: fh", *["0.7900"] * len(rt.BSDS), "computed"])
        w.writerow(["gPb-owt-ucm", *["0.8000"] * len(rt.BSDS), "published"])


def test_bsds_table_has_seeded_wnet_rows_and_once_run_baselines(tmp_path):
    runs = tmp_path / "work" / "bsds500_cpu"
    for seed, pri in enumerate([0.78, 0.80, 0.82]):
        _bsds_run(runs / f"bsds500_cpu-s{seed}", pri, with_baseline=seed == 0)
    dest = tmp_path / "results"
    dest.mkdir()
    rt.collect("bsds500_cpu", runs, dest, [0, 1, 2])
    (dest / "bsds500_cpu.meta.json").write_text(json.dumps(META))
    rows = list(csv.DictReader(open(dest / "bsds500_cpu.csv")))
    assert [(r["method"], r["seed"]) for r in rows if r["method"] == "baseline: fh"] == [
        ("baseline: fh", "0")
    ]
    text = rt.render("bsds500_cpu", dest)
    assert "| W-Net + CRF + OWT-UCM | 0.800 ± 0.020 |" in text  # mean of .78 .80 .82, sample std .02
    assert "| baseline: fh | 0.790 | 0.790 |" in text  # one run, no spread
    # PRI .80 ± .02 against .79: the intervals overlap, so neither wins; VI is lower-is-better
    assert (
        "| W-Net + CRF + OWT-UCM vs fh | within the spread | within the spread | within the spread |" in text
    )
    # the per-seed view (docs/positional.md): each hierarchy row's PRI at ODS, seed by seed
    assert rt.render("bsds500_cpu", dest, "pri_by_seed") == (
        "W-Net + CRF + OWT-UCM PRI ODS 0.780 / 0.800 / 0.820 (seeds 0 / 1 / 2)."
    )


def test_bsds_table_without_baselines_has_no_comparison_section(tmp_path):
    runs = tmp_path / "work" / "bsds500_cpu"
    for seed, pri in enumerate([0.78, 0.80, 0.82]):
        _bsds_run(runs / f"bsds500_cpu-s{seed}", pri, with_baseline=False)
    dest = tmp_path / "results"
    dest.mkdir()
    rt.collect("bsds500_cpu", runs, dest, [0, 1, 2])
    (dest / "bsds500_cpu.meta.json").write_text(json.dumps(META | {"note": "Baselines not rerun."}))
    text = rt.render("bsds500_cpu", dest)
    assert "| W-Net + CRF + OWT-UCM | 0.800 ± 0.020 |" in text and "vs baseline" not in text
    assert "Baselines not rerun." in text.splitlines()[0]  # the meta's note is in the caption


def test_canny_owt_test_job_is_collected_rendered_and_compared(tmp_path):

    (cmd,) = reproduce.job_commands("canny_owt_test", tmp_path, tmp_path / "out", [0, 1, 2])
    assert cmd[1].endswith("owt_val.py") and cmd[cmd.index("--split") + 1] == "test"
    assert cmd[cmd.index("--rows") + 1] == "canny"
    run = tmp_path / "work" / "canny_owt_test" / "canny_owt_test"
    run.mkdir(parents=True)
    scores = {c: 0.5 + i / 100 for i, c in enumerate(rt.BSDS)} | {"sc_ods": 0.52526, "seconds": 1345.97}
    (run / "owt_val.json").write_text(json.dumps({"Canny-owt-ucm": scores | {"n_images": 200}}))
    dest = tmp_path / "results"
    dest.mkdir()
    rt.collect("canny_owt_test", tmp_path / "work" / "canny_owt_test", dest, [0, 1, 2])
    (row,) = csv.DictReader(open(dest / "canny_owt_test.csv"))
    assert (row["method"], row["seed"], row["sc_ods"], row["pri_ods"], row["seconds"]) == (
        "Canny-owt-ucm", "", "0.5253", "0.5200", "1346.0"
    )  # fmt: skip
    (dest / "canny_owt_test.meta.json").write_text(json.dumps(META | {"seeds": []}))
    text = rt.render("canny_owt_test", dest)
    assert "| Canny-owt-ucm (computed here) | 0.525 | 0.510 | 0.520 |" in text and "vs baseline" not in text
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    rt._write_rows(fresh / "canny_owt_test.csv", [row | {"seconds": "700.0"}])  # only the timing moved
    diffs = rt.compare("canny_owt_test", dest, fresh)
    assert not [d for d in diffs if d.startswith("MISMATCH")] and "x0.52" in diffs[0]
    rt._write_rows(fresh / "canny_owt_test.csv", [row | {"pri_ods": "0.5201"}])
    assert rt.compare("canny_owt_test", dest, fresh) == [
        "MISMATCH canny_owt_test ('Canny-owt-ucm', '') pri_ods: stored 0.5200, now 0.5201",
        "   timing ('Canny-owt-ucm', '') seconds: stored 1346.0, now 1346.0 (x1.00)",
    ]


def test_bench_block_is_a_table_of_measured_baseline_input_and_ratio(tmp_path):
    """A bench_* block is a human table: what was measured, the baseline, the input, both figures
    with units and their ratio (here bench_ddp: 2 processes against 1)."""
    res = {
        "device": "cpu",
        "threads": 1,
        "ddp": {"1 process": 35.41, "2 processes (torchrun)": 49.84, "ratio": 1.4075},
    }
    meta = {"date": "2026-12-01", "commit": "abc1234", "wall_s": 60.0, "machine": "vm, 2 cores, x86_64"}
    (tmp_path / "bench_ddp.json").write_text(json.dumps(res))
    (tmp_path / "bench_ddp.meta.json").write_text(json.dumps(meta))
    block = rt.render("bench_ddp", tmp_path)
    assert block.startswith("Timings; they vary by machine. Regenerated 2026-12-01 at commit abc1234")
    assert "| measured | baseline (same run) | input | ours | baseline | ratio |" in block
    assert (
        "| 1 process, 1 thread, same per-process batch | the quick default, CPU | 49.8 | 35.4 | 1.41× |"
        in block
    )
    assert "ddp.ratio" not in block  # no raw key dump


def test_ncut_block_names_shapes_units_and_both_ratios(tmp_path):
    """bench_ncut: the unfold baseline in seconds and MiB with the speed-up and memory ratio, the conv
    baseline in ms; the loss values (deterministic, for --check) are not shown."""
    res = {"ours": {"loss": 43.2, "median_s": 0.1367, "peak_bytes": 110796800},
           "unfold": {"loss": 43.2, "median_s": 32.45, "peak_bytes": 8725839872},
           "unfold_over_ours": {"wall": 237.46, "cpu": 237.2, "memory": 78.76},
           "ratio": {"conv": {"cpu_ms": 10.645}, "ours": {"cpu_ms": 16.98, "ratio_cpu": 1.618, "ratio_min_cpu": 1.888}}}  # fmt: skip
    meta = {"date": "2026-12-01", "commit": "abc1234", "wall_s": 160.0, "machine": "vm, 2 cores, x86_64"}
    (tmp_path / "bench_ncut.json").write_text(json.dumps(res))
    (tmp_path / "bench_ncut.meta.json").write_text(json.dumps(meta))
    block = rt.render("bench_ncut", tmp_path)
    assert "| B = 4, K = 64, 224×224, r = 5 | 0.137 s | 32.5 s | 237× faster |" in block
    assert "| 106 MiB | 8322 MiB | 79× less |" in block  # 110796800 / 2**20 = 105.7
    assert "| 17.0 ms | 10.6 ms | 1.62× the conv (median of pairs; min / min 1.89×) |" in block
    assert "eager" not in block and "43.2" not in block
    assert rt.render("bench_ncut", tmp_path, "summary").startswith(
        "The exact soft N-Cut (forward + backward, B = 4, K = 64, 224×224, r = 5) runs 237× faster"
    )


def test_views_headline_drops_the_note_and_summary_is_one_sentence(results):
    meta = json.loads((results / "compare_isbi.meta.json").read_text())
    (results / "compare_isbi.meta.json").write_text(json.dumps(meta | {"note": "How it was run."}))
    assert "How it was run." in rt.render("compare_isbi", results)
    assert "How it was run." not in rt.render("compare_isbi", results, "headline")
    summary = rt.render("compare_isbi", results, "summary")
    assert summary == (
        "W-Net (clusters Hungarian-matched to the classes) 0.520 ± 0.020 mIoU; the best supervised U-Net "
        "(ce loss) 0.720 ± 0.020; beyond the spread, 1 of 1 supervised losses beat W-Net (seeds 0, 1, 2)."
    )


def test_blocks_with_a_view_are_rendered_in_any_markdown_file(results, tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "- CamVid: <!-- reproduce:compare_isbi:summary -->\nold\n<!-- /reproduce:compare_isbi:summary -->\n"
    )
    rt.render_markdown(page, results)
    assert page.read_text() == (
        "- CamVid: <!-- reproduce:compare_isbi:summary -->\n"
        + rt.render("compare_isbi", results, "summary")
        + "\n<!-- /reproduce:compare_isbi:summary -->\n"
    )


def test_compare_of_some_seeds_checks_only_their_rows(results, tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    rows = [r for r in csv.DictReader(open(results / "compare_isbi.csv")) if r["seed"] == "1"]
    rt._write_rows(fresh / "compare_isbi.csv", rows)  # a rerun of seed 1 alone
    missing = [d for d in rt.compare("compare_isbi", results, fresh) if d.startswith("MISMATCH")]
    assert len(missing) == 2 * 2 * len(rt.COMPARE)  # every seed 0 and seed 2 score is missing
    assert [d for d in rt.compare("compare_isbi", results, fresh, [1]) if d.startswith("MISMATCH")] == []
    rows[0]["miou"] = "0.5201"
    rt._write_rows(fresh / "compare_isbi.csv", rows)
    assert [d for d in rt.compare("compare_isbi", results, fresh, [1]) if d.startswith("MISMATCH")] == [
        "MISMATCH compare_isbi ('wnet', '1') miou: stored 0.5200, now 0.5201"
    ]


@pytest.mark.parametrize("job", [j for j in reproduce.JOBS if j != "quick"])
def test_every_job_reads_its_data_from_the_data_folder_given(job, tmp_path):
    """No job may fall back on ``../shared`` beside the clone: every command that reads a dataset
    is handed the ``--data`` folder (bench_bsds once ran without it and failed on a fresh clone)."""

    data = tmp_path / "mydata"
    for cmd in reproduce.job_commands(job, data, tmp_path / "out", [0, 1, 2]):
        script = cmd[1]
        if script.endswith("run.py"):
            assert any(a == f"data.root={data / reproduce.SEEDED[job]}" for a in cmd), cmd
        elif 'add_argument("--data"' in open(script).read():
            assert cmd[cmd.index("--data") + 1].startswith(str(data)), cmd
        assert not any("shared" in a for a in cmd), cmd


def test_check_keeps_the_log_of_a_failed_command(tmp_path, monkeypatch, capsys):
    """The error names the failed command's log, so ``--check`` must not delete it with its temp folder."""

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    fail = [sys.executable, "-c", "print('the reason'); raise SystemExit(3)"]
    monkeypatch.setattr(reproduce, "job_commands", lambda *a: [fail])
    with pytest.raises(SystemExit, match="exited 3; see "):
        reproduce.check(["bench_ncut"], tmp_path, [0], 1)
    (log,) = tmp_path.glob("reproduce-check-*/work/bench_ncut/log0.txt")
    assert log.read_text() == "the reason\n"
    assert str(log.parents[2]) in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"wall_s": 99.0}, ["   timing wall_s: stored 168.4, now 99 (x0.59; machine-dependent)"]),
        (
            {"scores": {"sc_ods": 0.5882, "pri_ods": 0.8077}},
            ["MISMATCH bench_bsds scores.sc_ods: stored 0.5881, now 0.5882"],
        ),
        ({"literal_identical": False}, ["MISMATCH bench_bsds literal_identical: stored True, now False"]),
        ({"scores": {"pri_ods": 0.8077}}, ["MISMATCH bench_bsds scores.sc_ods: stored 0.5881, now None"]),
    ],
)
def test_bench_scores_and_flags_are_compared_exactly_and_timings_as_ratios(tmp_path, change, expected):
    """A benchmark's scores (README quotes bench_bsds's gPb-owt-ucm row) must match exactly; its times never fail."""
    stored = {
        "wall_s": 168.4,
        "scores": {"sc_ods": 0.5881, "pri_ods": 0.8077},
        "literal_identical": True,
        "pred_dir": "/a",
    }
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "bench_bsds.json").write_text(json.dumps(stored))
    (tmp_path / "new" / "bench_bsds.json").write_text(json.dumps(stored | {"pred_dir": "/b"} | change))
    diffs = rt.compare("bench_bsds", tmp_path / "old", tmp_path / "new")
    timing = (
        [] if "wall_s" in change else ["   timing wall_s: stored 168.4, now 168.4 (x1.00; machine-dependent)"]
    )
    assert sorted(diffs) == sorted(expected + timing)


def test_jobs_run_torch_on_avx2_kernels(tmp_path):
    """The stored figures came from AVX2 CPUs; on an AVX-512 CPU torch's own kernels would round
    differently (the quick run's N-Cut moved from 3.22 to 2.98), so the jobs cap them at AVX2."""

    kernels = reproduce._torch_kernels()  # torch run in a subprocess with the jobs' environment
    assert kernels != "unknown" and "AVX512" not in kernels, kernels
    assert reproduce.ENV["ONEDNN_MAX_CPU_ISA"] == "AVX2"  # oneDNN's convolutions, the same cap


def test_machine_record_names_the_cpu_and_the_kernels_the_jobs_ran():
    """A stored figure depends on the kernel set, so each job's meta says which one its torch used."""
    import os

    machine = reproduce._machine()
    assert f", {os.cpu_count()} cores, " in machine
    kernels = machine.rsplit(", torch kernels ", 1)[1]
    assert kernels in {"DEFAULT", "AVX2", "NEON", "SVE256", "VSX", "ZVECTOR"}, machine  # never AVX512
    if Path("/proc/cpuinfo").exists() and " avx512f" in Path("/proc/cpuinfo").read_text():
        assert "with AVX-512" in machine


@pytest.mark.parametrize(
    "diffs, kept", [(["MISMATCH quick  ncut_after: stored 3.2185, now 2.9812"], True), ([], False)]
)
def test_check_keeps_its_runs_when_a_figure_mismatches(tmp_path, monkeypatch, capsys, diffs, kept):
    """A mismatch is diagnosed from the runs' logs, so ``--check`` keeps them then (and only then)."""

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(reproduce, "job_commands", lambda *a: [[sys.executable, "-c", "print('trained')"]])
    monkeypatch.setattr(reproduce, "collect", lambda *a: None)
    monkeypatch.setattr(reproduce.tables, "compare", lambda *a: diffs)
    assert reproduce.check(["quick"], tmp_path, [0], 1) == len(diffs)
    logs = list(tmp_path.glob("reproduce-check-*/work/quick/log0.txt"))
    assert [log.read_text() for log in logs] == (["trained\n"] if kept else [])
    # the stored run's machine beside this one's: a mismatch's first suspect (read, so a refresh keeps this)
    stored = json.loads((ROOT / "docs" / "results" / "quick.meta.json").read_text())["machine"]
    assert f"   machine: stored on {stored}; now on {reproduce._machine()}" in capsys.readouterr().out


def test_results_name_the_rows_as_the_bsds_task_does():
    from wnet.tasks.bsds import PIPELINE_ROW

    assert rt.OWT_ROW == PIPELINE_ROW["owt"]


def test_bsds500_cpu_exports_seed_0_and_scores_that_file_on_5_val_images(tmp_path):
    data, out = tmp_path / "mydata", tmp_path / "out"
    export, score = reproduce.after_commands("bsds500_cpu", data, out, [0, 1, 2])
    weights = out / "pretrained" / "bsds500_cpu.pt"
    assert export[1].endswith("export_pretrained.py")
    assert export[2:] == [str(out / "bsds500_cpu-s0" / "last.pt"), str(weights)]
    assert {
        f"checkpoint={weights}",
        f"data.root={data / 'BSDS500'}",
        "bsds.split=val",
        "bsds.max_images=5",
    } <= set(score)
    assert reproduce.after_commands("bsds500_cpu", data, out, [1, 2]) == []  # no seed 0, nothing to ship
    assert reproduce.after_commands("compare_isbi", data, out, [0]) == []


def test_a_later_sitting_replaces_its_seeds_and_keeps_the_others(tmp_path):
    """bsds500_cpu regenerated in two sittings: seed 0 first, then seeds 1 and 2 at another commit."""
    dest = tmp_path / "results"
    dest.mkdir()
    first = tmp_path / "a" / "bsds500_cpu"
    _bsds_run(first / "bsds500_cpu-s0", 0.78, with_baseline=True)
    _bsds_run(first / "bsds500_cpu-s1", 0.10, with_baseline=False)  # an old seed 1, replaced below
    rt.collect("bsds500_cpu", first, dest, [0, 1])
    old = META | {"seeds": [0, 1], "note": "First sitting.", "wall_s": 120.0, "commands": ["s0", "s1"]}
    (dest / "bsds500_cpu.meta.json").write_text(json.dumps(old))
    later = tmp_path / "b" / "bsds500_cpu"
    _bsds_run(later / "bsds500_cpu-s1", 0.80, with_baseline=False)
    _bsds_run(later / "bsds500_cpu-s2", 0.82, with_baseline=False)
    rt.collect("bsds500_cpu", later, dest, [1, 2])
    now = META | {"date": "2026-12-08", "commit": "def5678", "seeds": [1, 2], "wall_s": 240.0}
    meta = rt.merged_meta(now, dest / "bsds500_cpu.meta.json", [1, 2])
    rows = list(csv.DictReader(open(dest / "bsds500_cpu.csv")))
    wnet = [(r["seed"], r["pri_ods"]) for r in rows if r["method"] == "W-Net + CRF + OWT-UCM"]
    assert wnet == [("0", "0.7800"), ("1", "0.8000"), ("2", "0.8200")]  # the old seed 1 is gone
    assert [r["seed"] for r in rows if r["method"] == "baseline: fh"] == ["0"]
    assert meta["seeds"] == [0, 1, 2] and meta["note"] == "First sitting."
    assert [(s["seeds"], s["commit"]) for s in meta["sittings"]] == [([0], "abc1234"), ([1, 2], "def5678")]
    (dest / "bsds500_cpu.meta.json").write_text(json.dumps(meta))
    caption = rt.render("bsds500_cpu", dest).splitlines()[0]
    assert caption.startswith(
        "Regenerated in 2 sittings: 2026-11-30 at commit abc1234 (2 min, seeds 0; test box); "
        "2026-12-08 at commit def5678 (4 min, seeds 1, 2; test box). First sitting."
    )
    assert "| W-Net + CRF + OWT-UCM | 0.800 ± 0.020 |" in rt.render("bsds500_cpu", dest)


def test_a_full_rerun_replaces_every_seed_and_needs_no_sittings(tmp_path):
    dest = tmp_path / "results"
    dest.mkdir()
    (dest / "bsds500_cpu.meta.json").write_text(json.dumps(META))
    assert rt.merged_meta(META | {"commit": "new"}, dest / "bsds500_cpu.meta.json", [0, 1, 2]) == META | {
        "commit": "new"
    }


def test_a_computed_row_named_like_a_published_one_is_refused(tmp_path):
    """A computed "W-Net+ucm (paper)" row was averaged with the quoted paper row of the same name."""
    runs = tmp_path / "work" / "bsds500_cpu"
    _bsds_run(runs / "bsds500_cpu-s0", 0.80, with_baseline=True)
    with open(runs / "bsds500_cpu-s0" / "bsds500_results.csv", "a", newline="") as f:
        csv.writer(f).writerow(["W-Net+ucm (paper)", *["0.5780"] * len(rt.BSDS), "computed"])
    dest = tmp_path / "results"
    dest.mkdir()
    rt.collect("bsds500_cpu", runs, dest, [0])
    (dest / "bsds500_cpu.meta.json").write_text(json.dumps(META | {"seeds": [0]}))
    with pytest.raises(ValueError, match=r"named like published ones: W-Net\+ucm \(paper\)"):
        rt.render("bsds500_cpu", dest)


def test_the_pipeline_rows_never_take_a_published_row_s_name():
    from wnet.bsds.table import PUBLISHED
    from wnet.tasks.bsds import PIPELINE_ROW

    assert not set(PIPELINE_ROW.values()) & set(PUBLISHED)


def test_a_sitting_clears_only_its_own_seeds_runs(tmp_path, monkeypatch):
    """A later sitting (``--seeds 1 2``) must not delete seed 0's run folder, exported model or log:
    they are what the stored seed-0 rows were scored from. Its own seeds' old runs are cleared."""

    out = tmp_path / "work" / "bsds500_cpu"
    for folder in ("bsds500_cpu-s0", "bsds500_cpu-s1", "pretrained", "pretrained-val5"):
        (out / folder).mkdir(parents=True)
        (out / folder / "last.pt").write_text(folder)
    (out / "log-s0.txt").write_text("seed 0's log")
    ran = []
    monkeypatch.setattr(
        reproduce, "job_commands", lambda name, data, o, seeds, cache: [["seed", str(s)] for s in seeds]
    )
    monkeypatch.setattr(reproduce, "_run", lambda cmd, log: ran.append((cmd, log.name)) or 0.0)
    monkeypatch.setattr(reproduce, "_commit", lambda: "abc1234")
    monkeypatch.setattr(reproduce, "_machine", lambda: "test box")
    meta = reproduce.run_job("bsds500_cpu", tmp_path, tmp_path / "work", [1, 2], 1)
    assert sorted(p.name for p in out.iterdir()) == [
        "bsds500_cpu-s0",
        "log-s0.txt",
        "pretrained",
        "pretrained-val5",
    ]
    assert (out / "bsds500_cpu-s0" / "last.pt").read_text() == "bsds500_cpu-s0"
    assert ran == [(["seed", "1"], "log-s1.txt"), (["seed", "2"], "log-s2.txt")]  # no export: seed 0 not run
    assert meta["seeds"] == [1, 2]
    reproduce.run_job("bsds500_cpu", tmp_path, tmp_path / "work", [0], 1)  # seed 0 again: its runs go
    assert not (out / "bsds500_cpu-s0").exists() and not (out / "pretrained").exists()
    reproduce.run_job("quick", tmp_path, tmp_path / "work", [0], 1)  # an unseeded job starts empty
    assert [p.name for p in (tmp_path / "work" / "quick").iterdir()] == []


def test_a_resumed_sitting_continues_its_own_runs_from_their_last_checkpoint(tmp_path, monkeypatch):
    """``--resume`` (a sitting the machine's restart interrupted after hours of training) keeps the
    seeds' run folders, runs each with ``resume=auto`` and records which runs went on from which step."""
    import torch

    out = tmp_path / "work" / "bsds500_cpu"
    (out / "bsds500_cpu-s1").mkdir(parents=True)
    torch.save({"step": 2400}, out / "bsds500_cpu-s1" / "last.pt")
    ran = []
    monkeypatch.setattr(
        reproduce, "job_commands", lambda name, data, o, seeds, cache: [["seed", str(s)] for s in seeds]
    )
    monkeypatch.setattr(reproduce, "_run", lambda cmd, log: ran.append(cmd) or 0.0)
    monkeypatch.setattr(reproduce, "_commit", lambda: "abc1234")
    monkeypatch.setattr(reproduce, "_machine", lambda: "test box")
    meta = reproduce.run_job("bsds500_cpu", tmp_path, tmp_path / "work", [1, 2], 1, resume=True)
    assert (out / "bsds500_cpu-s1" / "last.pt").is_file()
    assert ran == [["seed", "1", "resume=auto"], ["seed", "2", "resume=auto"]]
    assert meta["resumed"] == {"bsds500_cpu-s1": 2400}  # seed 2 had no checkpoint: it starts
    fresh = reproduce.run_job("bsds500_cpu", tmp_path, tmp_path / "work", [1], 1)
    assert not (out / "bsds500_cpu-s1").exists() and "resumed" not in fresh and ran[-1] == ["seed", "1"]
    with pytest.raises(SystemExit, match="seeded job"):
        reproduce.run_job("quick", tmp_path, tmp_path / "work", [0], 1, resume=True)


def test_a_check_resumes_only_in_a_named_folder(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--work DIR"):
        reproduce.main(["--check", "--resume", "--only", "bsds500_cpu", "--data", str(tmp_path)])


def test_the_summary_answers_the_two_questions_of_the_paper_s_post_processing():
    """The README's sentence on the paper's post-processing, from the rows: at ODS and beyond the
    spread, does each of its rows beat gPb-owt-ucm computed here, and does it reach the paper's W-Net
    row (quoted: SC .57, PRI .81, VI 1.76)? Hand-checked: Alg. 2 SC .55 ± .01 lies below both; its
    PRI .82 ± .02 spans .828 and its VI 1.70 ± .10 spans 1.701; W-Net+ucm's PRI .830 ± 0 clears
    .828 while its VI 1.81 ± .01 is worse than both 1.701 and 1.76."""
    from wnet.tasks import bsds_tables

    def row(method, seed, sc, pri, vi):
        return {
            "method": method,
            "seed": seed,
            "source": "computed",
            "sc_ods": sc,
            "pri_ods": pri,
            "vi_ods": vi,
        }

    alg2, ucm = "W-Net + CRF + gPb (paper Alg. 2)", "W-Net + CRF + gPb-owt-ucm (paper W-Net+ucm)"
    rows = [row("baseline: gpb-owt-ucm", "", "0.590", "0.828", "1.701")]
    for s, (sc, pri, vi) in enumerate(
        [("0.54", "0.80", "1.60"), ("0.55", "0.82", "1.70"), ("0.56", "0.84", "1.80")]
    ):
        rows.append(row(alg2, str(s), sc, pri, vi))
    for s, (sc, vi) in enumerate([("0.60", "1.80"), ("0.61", "1.81"), ("0.62", "1.82")]):
        rows.append(row(ucm, str(s), sc, "0.830", vi))
    text = bsds_tables.answers(rows, [0, 1, 2])
    assert text.startswith(
        "The paper's post-processing on this model, at ODS over seeds 0, 1, 2: "
        "Alg. 2 SC 0.550 ± 0.010, PRI 0.820 ± 0.020, VI 1.700 ± 0.100; "
        "W-Net+ucm SC 0.610 ± 0.010, PRI 0.830, VI 1.810 ± 0.010. "  # a std of 0 shows as none
    )
    assert (
        "Against gPb-owt-ucm computed here (SC 0.590, PRI 0.828, VI 1.701): Alg. 2 loses on SC, "
        "within the spread on PRI and VI; W-Net+ucm beats on SC and PRI, loses on VI." in text
    )
    assert (
        "Against the paper's W-Net row (SC 0.570, PRI 0.810, VI 1.760): Alg. 2 loses on SC, within "
        "the spread on PRI and VI; W-Net+ucm beats on SC and PRI, loses on VI." in text
    )
    assert "no answer" in bsds_tables.answers(rows[1:], [0, 1, 2])  # without the computed gPb-owt-ucm


def test_compare_reads_the_val5_file_which_has_no_seed_column(tmp_path):
    # --check of seed 0 compares the shipped model's val5 scores too: a CSV with no seed column
    header = "method,sc_ods,sc_ois,pri_ods,pri_ois,vi_ods,vi_ois,bdry_ods_f,bdry_ois_f,bdry_ap,source\n"
    row = "W-Net raw (argmax),0.1450,0.1450,0.8133,0.8133,6.3966,6.3966,0.3402,0.3402,0.0000,computed\n"
    stored, fresh = tmp_path / "stored", tmp_path / "fresh"
    for folder, text in [(stored, row), (fresh, row.replace("0.8133,0.8133", "0.8133,0.8134"))]:
        folder.mkdir()
        (folder / "bsds500_cpu_val5.csv").write_text(header + text)
    diffs = rt.compare("bsds500_cpu_val5", stored, fresh)
    assert [d for d in diffs if d.startswith("MISMATCH")] and "pri_ois" in " ".join(diffs)
    assert rt.compare("bsds500_cpu_val5", stored, stored) == []


@pytest.mark.parametrize("seeds, copied", [([1, 2], False), ([0], True)])
def test_only_a_sitting_that_ran_seed_0_collects_the_val5_file(tmp_path, seeds, copied):
    """A sitting of seeds 1 and 2 in a folder where an earlier sitting exported seed 0 must not pass
    that older export's val5 scores (or its model) off as its own."""
    out = tmp_path / "work" / "bsds500_cpu"
    for s in seeds:
        _bsds_run(out / f"bsds500_cpu-s{s}", 0.80, with_baseline=s == 0)
    (out / "pretrained-val5").mkdir(parents=True)
    (out / "pretrained-val5" / "bsds500_results.csv").write_text("method,source\nold,computed\n")
    dest = tmp_path / "results"
    reproduce.collect("bsds500_cpu", tmp_path / "work", dest, META | {"seeds": seeds}, seeds)
    assert (dest / "bsds500_cpu_val5.csv").is_file() == copied
    assert (dest / "bsds500_cpu.csv").is_file()


def test_a_check_names_the_machine_of_each_checked_seed_s_sitting(tmp_path, monkeypatch):
    """The rows of one seeded table can come from sittings on different CPUs: the check's machine line
    names, for the seeds it reran, the machine that made each, not only the latest sitting's."""
    sittings = [{"seeds": [0], "machine": "AMD box"}, {"seeds": [1, 2], "machine": "Intel box"}]
    meta = META | {"machine": "AMD box", "sittings": sittings}
    (tmp_path / "bsds500_cpu.meta.json").write_text(json.dumps(meta))
    (tmp_path / "quick.meta.json").write_text(json.dumps(META))
    monkeypatch.setattr(reproduce.tables, "RESULTS", tmp_path)
    assert reproduce._stored_machines("bsds500_cpu", [0, 1, 2]) == "seed 0: AMD box; seed 1, 2: Intel box"
    assert reproduce._stored_machines("bsds500_cpu", [2]) == "seed 2: Intel box"
    assert reproduce._stored_machines("quick", [0]) == "test box"
    assert reproduce._stored_machines("compare_isbi", [0]) == "(none stored)"
