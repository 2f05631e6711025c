"""The command line behind ``experiments/run.py``: load the config, print it, run the task.

    python experiments/run.py [--config FILE.yaml] [key=value ...]

Config precedence: dataclass defaults (``wnet/tasks/config.py``) < ``--config`` YAML < overrides.
"""

from __future__ import annotations

import argparse
import importlib

from wnet.tasks.config import ConfigError, dump_config, load_config

TASKS = {
    "unsupervised": "wnet.tasks.unsupervised",
    "supervised": "wnet.tasks.supervised",
    "compare": "wnet.tasks.compare",
    "bsds": "wnet.tasks.bsds",
}


def parse(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", default=None, help="YAML file, e.g. experiments/configs/bsds500.yaml")
    p.add_argument("overrides", nargs="*", help="key=value overrides, dotted keys (model.k=32)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        p.error(str(e))
    if cfg.task not in TASKS:
        p.error(f"task={cfg.task!r} is not one of {', '.join(TASKS)}")
    return cfg


def main(argv: list[str] | None = None):
    cfg = parse(argv)
    print("resolved config:\n" + dump_config(cfg))
    return importlib.import_module(TASKS[cfg.task]).main(cfg)
