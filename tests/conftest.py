import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run each test on one torch thread: tiny tensors gain nothing from more, and on a busy
    2-core machine OpenMP spin-waiting made multi-threaded ops 10-30x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
