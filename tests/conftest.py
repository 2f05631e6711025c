import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a reason when it is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not present (development data in ../shared is optional)")
    return p


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run each test on one torch thread: tiny tensors gain nothing from more, and on a busy
    2-core machine OpenMP spin-waiting made multi-threaded ops 10-30x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
