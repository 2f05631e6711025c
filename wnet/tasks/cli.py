"""The command line behind ``experiments/run.py``: load the config, print it, run the task.

    python experiments/run.py [--config FILE.yaml] [--debug] [--verbose] [key=value | --key=value ...]

Config precedence: dataclass defaults (``wnet/tasks/config.py``) < ``--config`` YAML < overrides.
``--key=value`` is the form ``wandb agent`` passes; it means ``key=value``. The first screen shows
the values that differ from the defaults (the run folder keeps the whole config); ``--verbose``
prints the whole resolved config.

A user error (a bad config value, an unusable input file or checkpoint, a diverged run, an
interruption, a write the machine refuses) is printed as one line ``error: ...`` and exits with
its own code (``wnet.tasks.errors``); ``--debug`` shows the traceback instead. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys

from wnet.tasks import bsds, compare, distributed, segment, supervised, unsupervised
from wnet.tasks.config import Config
from wnet.tasks.errors import ConfigError, Interrupted, StorageError, UserError, shown
from wnet.tasks.keys import _leaves, config_to_dict, dump_config
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
    p.add_argument("--verbose", action="store_true", help="print the whole resolved config at start")
    p.add_argument("overrides", nargs="*", help="key=value overrides, dotted keys (model.k=32)")
    own = ("--config", "-c", "--debug", "--verbose")
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


def _as_typed(value) -> str:
    """A config value as it is typed on the command line (``[a,b]``, ``true``)."""
    if isinstance(value, list):
        return f"[{','.join(map(str, value))}]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def config_summary(cfg, width: int = 100) -> str:
    """One screen: the task, and every value that differs from the defaults, wrapped to ``width``."""
    default = dict(_leaves(config_to_dict(Config())))
    changed = [
        f"{k}={_as_typed(v)}" for k, v in _leaves(config_to_dict(cfg)) if default.get(k) != v and k != "task"
    ]
    lines, line = [], f"config: task={cfg.task}; {len(changed)} values differ from the defaults:"
    for item in changed:
        if len(line) + 1 + len(item) > width:
            lines.append(line)
            line = " "
        line += " " + item
    where = "segment.output's segment.yaml" if cfg.task == "segment" else "the run folder's config.yaml"
    return "\n".join([*lines, line, f"(the whole config goes to {where}; --verbose prints it)"])


def run(argv: list[str] | None = None):
    """Parse, load and check the config, join the process group (under torchrun), run the task;
    exceptions propagate (see :func:`main`)."""
    args, overrides = parse(argv)
    cfg = load_config(args.config, overrides, tasks=TASKS)
    distributed.init(cfg.train.device)
    print("resolved config:\n" + dump_config(cfg) if args.verbose else config_summary(cfg))
    try:
        return TASKS[cfg.task](cfg)
    finally:
        distributed.cleanup()


# a write the machine refused (disk full, read-only, not a directory, over quota): the user's to fix
STORAGE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.ENOTDIR, errno.EDQUOT, errno.EACCES, errno.EPERM)


def _as_user_error(e: BaseException) -> UserError | None:
    """Ctrl-C outside a training loop (exit 130), and a refused write no task turned into one line."""
    if isinstance(e, KeyboardInterrupt):
        return Interrupted("interrupted by Ctrl-C", signal.SIGINT)
    if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
        return StorageError(f"{shown(e.filename)}: {e.strerror}" if e.filename else str(e.strerror))
    return None


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except (UserError, KeyboardInterrupt, OSError) as caught:
        e = caught if isinstance(caught, UserError) else _as_user_error(caught)
        if e is None or "--debug" in argv:
            raise
        if os.environ.get("RANK", "0") == "0" or not isinstance(
            e, Interrupted
        ):  # one interruption note, not N
            print(f"error: {one_line(e)}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
