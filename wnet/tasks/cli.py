"""The command line behind ``experiments/run.py``: load the config, print it, run the task.

    python experiments/run.py [--config FILE.yaml] [--debug] [key=value | --key=value ...]

Config precedence: dataclass defaults (``wnet/tasks/config.py``) < ``--config`` YAML < overrides.
``--key=value`` is the form ``wandb agent`` passes; it means ``key=value``.

A user error (a bad config value, an unusable input file or checkpoint, a diverged run, an
interruption) is printed as one line ``error: ...`` and exits with its own code
(``wnet.tasks.errors``); ``--debug`` shows the traceback instead. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from wnet.tasks import bsds, compare, distributed, segment, supervised, unsupervised
from wnet.tasks.errors import ConfigError, Interrupted, UserError
from wnet.tasks.keys import dump_config
from wnet.tasks.validate import load_config

# task= name -> its main(cfg): the one table the config check and the dispatch read
TASKS = {
    "unsupervised": unsupervised.main,
    "supervised": supervised.main,
    "compare": compare.main,
    "bsds": bsds.main,
    "segment": segment.main,
}


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """(``--config`` / ``--debug``, the ``key=value`` overrides, ``--key=value`` turned into ``key=value``)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", default=None, help="YAML file, e.g. experiments/configs/bsds500.yaml")
    p.add_argument("--debug", action="store_true", help="show tracebacks for user errors too")
    p.add_argument("overrides", nargs="*", help="key=value overrides, dotted keys (model.k=32)")
    own = ("--config", "-c", "--debug")
    argv = [
        a[2:] if a.startswith("--") and "=" in a and a.split("=", 1)[0] not in own else a for a in argv or []
    ]
    args, rest = p.parse_known_args(argv)
    if rest:
        raise ConfigError(f"unknown option {rest[0]!r}; overrides are key=value (or --key=value)")
    return args, list(args.overrides)


def one_line(error: BaseException) -> str:
    """The message of a user error on one line (a DataLoader worker's error carries its traceback)."""
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught "):  # re-raised from a worker: its last line
        last = lines[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return " ".join(lines)


def run(argv: list[str] | None = None):
    """Parse, load and check the config, join the process group (under torchrun), run the task;
    exceptions propagate (see :func:`main`)."""
    args, overrides = parse(argv)
    cfg = load_config(args.config, overrides, tasks=TASKS)
    distributed.init(cfg.train.device)
    print("resolved config:\n" + dump_config(cfg))
    try:
        return TASKS[cfg.task](cfg)
    finally:
        distributed.cleanup()


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except UserError as e:
        if "--debug" in argv:
            raise
        if os.environ.get("RANK", "0") == "0" or not isinstance(
            e, Interrupted
        ):  # one interruption note, not N
            print(f"error: {one_line(e)}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
