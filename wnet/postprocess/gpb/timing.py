"""Seconds per stage of the gPb computation: CPU time of this process, and wall time.

CPU time (``time.process_time``) is what one core spends on the stage whatever else runs on
the machine, so it is the figure compared with the speed goal on a shared box; wall time is
kept beside it (``<stage>_wall``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager


@contextmanager
def timed(timings: dict | None, stage: str):
    """Add the stage's CPU seconds to ``timings[stage]`` and its wall seconds to ``<stage>_wall``."""
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + time.process_time() - cpu
            timings[f"{stage}_wall"] = timings.get(f"{stage}_wall", 0.0) + time.perf_counter() - wall
