"""The one entry point.

    python experiments/run.py                                   # W-Net on the embedded procedural data
    python experiments/run.py --config experiments/configs/bsds500.yaml data.root=/path/to/BSDS500
    python experiments/run.py task=supervised data.name=paired ... supervised.loss=dice+ce
    python experiments/run.py --config experiments/configs/compare_camvid.yaml task=compare

Config precedence: dataclass defaults (wnet/config.py) < --config YAML < key=value overrides.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from wnet.config import ConfigError, dump_config, load_config  # noqa: E402

TASKS = {
    "unsupervised": "wnet.train",
    "supervised": "wnet.supervised",
    "compare": "wnet.compare",
    "bsds": "wnet.pipeline",
}


def parse(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", default=None, help="YAML file under experiments/configs/")
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
    import importlib

    module = importlib.import_module(TASKS[cfg.task])
    return module.main(cfg)


if __name__ == "__main__":
    main()
