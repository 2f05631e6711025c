"""The application layer: config tree, run plumbing, builders, the one training loop and the tasks.

It composes the library (``wnet.*``); nothing in the library imports it. Entry point:
``python experiments/run.py`` (:mod:`wnet.tasks.cli`). What scripts and notebooks may use is
exported here: ``load_config``, ``load_wnet`` (a checkpoint's W-Net and config) and the error
types; the rest of the package is its own business.
"""

from wnet.tasks.errors import CheckpointError, ConfigError, InputError, UserError
from wnet.tasks.runtime import load_wnet
from wnet.tasks.validate import load_config

__all__ = ["CheckpointError", "ConfigError", "InputError", "UserError", "load_config", "load_wnet"]
