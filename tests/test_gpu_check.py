"""experiments/gpu_check.sh without CUDA is a dry run that says what it skipped."""

import subprocess
import sys

import pytest
import torch
from helpers import ROOT


@pytest.mark.slow  # the whole GPU check script, dry
@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs the real checks (minutes)")
def test_gpu_check_dry_run_reports_every_skipped_check(tmp_path):
    r = subprocess.run(
        ["bash", str(ROOT / "experiments" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "OUT": str(tmp_path), "HOME": str(tmp_path)},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    summary = (tmp_path / "gpu_check_summary.md").read_text()
    assert summary == r.stdout
    for check in (
        "CUDA tests",
        "bench_ncut --device cuda",
        "bench_train paper scale, bf16",
        "DDP 2 ranks (nccl)",
    ):
        assert f"| {check} | skipped: no CUDA device" in summary
    assert "| bench_train.py | imports and parses (dry run) |" in summary
