"""Setting one dotted key of the config tree, checked against its type.

``set_key(cfg, "model.k", 32)`` walks the dataclasses, refuses an unknown key (naming it and
listing the valid ones) or a value of the wrong type, and converts where that is lossless (an
int for a float field, YAML's ``1e-3`` string for a float).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from wnet.tasks.errors import ConfigError


def _valid_keys(node: Any) -> str:
    return ", ".join(f.name for f in dataclasses.fields(node))


def _as_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError("expected an integer")


def _as_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    raise TypeError("expected a number")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError("expected true/false")


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. name=2024 on the command line
    raise TypeError("expected a string")


SCALARS = {int: _as_int, float: _as_float, bool: _as_bool, str: _as_str}


def _check_union(key: str, value: Any, tp: Any) -> Any:
    for arg in typing.get_args(tp):
        try:
            return _check_type(key, value, arg)
        except ConfigError:
            pass
    raise ConfigError(f"config key '{key}': {value!r} is not of type {tp}")


def _check_container(key: str, value: Any, tp: Any, origin: Any) -> Any:
    if tp is list or origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [_check_type(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
    return dict(value)


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to ``tp`` where that is lossless, else raise ConfigError."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _check_union(key, value, tp)
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"config key '{key}': expected None, got {value!r}")
    if tp in (list, dict) or origin in (list, dict):
        return _check_container(key, value, tp, origin)
    if tp not in SCALARS:
        raise ConfigError(f"config key '{key}': unsupported type {tp}")
    try:
        return SCALARS[tp](value)
    except TypeError as e:
        raise ConfigError(f"config key '{key}': {e}, got {value!r}") from None


def set_key(cfg, dotted: str, value: Any) -> None:
    """Set the dotted ``key`` of a dataclass tree to ``value``, checked against the field's type."""
    node: Any = cfg
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(type(node))
        if part not in hints:
            where = ".".join(parts[:i]) or "top level"
            raise ConfigError(
                f"unknown config key '{dotted}' ('{part}' is not in {where}); "
                f"valid keys there: {_valid_keys(node)}"
            )
        sub = getattr(node, part)
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(sub):
                if not isinstance(value, dict):
                    raise ConfigError(f"config key '{dotted}' is a section; give a mapping")
                for k, v in value.items():
                    set_key(cfg, f"{dotted}.{k}", v)
            else:
                setattr(node, part, _check_type(dotted, value, hints[part]))
        elif not dataclasses.is_dataclass(sub):
            raise ConfigError(f"config key '{dotted}': '{part}' is a value, not a section")
        node = sub
