"""The errors a user can cause, each with its exit code; anything else is a bug and keeps its traceback.

``experiments/run.py`` prints a :class:`UserError` as one line (``error: ...``) and exits with its
code; ``--debug`` shows the traceback instead.

| code | meaning |
|---|---|
| 2 | the config: an unknown key, a wrong type, a value out of range, a missing file it names |
| 3 | the input or output: images, masks, folders, checkpoints that cannot be used as they are; a run
  folder in use by another run; a folder or disk that cannot be written (full, read-only, not a folder) |
| 4 | training diverged: a non-finite loss (the last checkpoint is the last good one) |
| 130, 143 | interrupted by SIGINT / SIGTERM: a checkpoint was written at the signal; resume from it |
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from wnet.datasets.images import shown


class UserError(Exception):
    """An error in what the user gave (config, data, checkpoint); the message says what and where."""

    exit_code = 1


class ConfigError(UserError, ValueError):
    """A config key or value is invalid; the message names the key and what is allowed."""

    exit_code = 2


def need(ok: bool, key: str, value, allowed: str) -> None:
    """Raise :class:`ConfigError` naming ``key``, its ``value`` and what is ``allowed``, unless ``ok``."""
    if not ok:
        raise ConfigError(f"config key '{key}': {value!r} is not allowed; expected {allowed}")


def choice(key: str, value, choices) -> None:
    """``need`` ``value`` to be one of ``choices``."""
    need(value in choices, key, value, "one of " + ", ".join(map(str, choices)))


class InputError(UserError):
    """An input file or folder cannot be used (missing, unreadable, wrong size or values)."""

    exit_code = 3


class CheckpointError(InputError):
    """A checkpoint is unreadable, truncated, or does not fit this run (the differences are listed)."""


class StorageError(InputError):
    """A file or folder cannot be written: disk full, read-only, not a directory, no permission."""


class RunInUse(InputError):
    """The run folder is locked by another live run (its PID is named)."""


@contextlib.contextmanager
def writing(path) -> Iterator[None]:
    """Turn an ``OSError`` while writing ``path`` into one line naming the path and the cause."""
    try:
        yield
    except OSError as e:
        raise StorageError(f"cannot write {shown(path)}: {e.strerror or e}") from e


class DivergedError(UserError, FloatingPointError):
    """A loss became NaN or infinite."""

    exit_code = 4


class Interrupted(UserError):
    """SIGINT or SIGTERM stopped the run after a checkpoint was written at the signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum
