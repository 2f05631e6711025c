"""experiments/bench_bsds.py end to end on the official benchmark's demo ucm2 (tests/fixtures/bsds_bench)."""

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "bsds_bench"


@pytest.mark.slow  # runs the benchmark script end to end
def test_bench_bsds_writes_its_figures_with_chosen_baseline_ids(tmp_path):
    """The command reproduce.py's bench_bsds job runs, on 5 real ucm2 files: the JSON holds the
    scores, the per-image times and the old-matcher ratio of the image named by --baseline-ids."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "experiments" / "bench_bsds.py"), "--data", str(FIXTURE), "--split", "",
           "--pred", str(FIXTURE / "ucm2"), "--baseline-ids", "2018", "--nthresh", "5", "--literal-images", "1",
           "--workers", "1", "--json", str(out), "--out", str(tmp_path / "bench")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["images"] == 5 and res["nthresh"] == 5
    assert 0 < res["scores"]["pri_ods"] <= 1 and 0 < res["scores"]["bdry_ods_f"] <= 1
    assert res["per_image"]["max"] >= res["per_image"]["median"] > 0
    assert res["literal_identical"] is True
    assert "2018" in json.dumps(res["baseline"])
