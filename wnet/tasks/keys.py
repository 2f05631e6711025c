"""Reading the config tree: YAML files and ``key=value`` overrides, each key checked against its type.

    cfg = parse_config("experiments/configs/bsds500.yaml", ["model.k=32", "train.iterations=100"])

Precedence: dataclass defaults (:mod:`wnet.tasks.config`) < YAML file < command-line overrides.
``set_key(cfg, "model.k", 32)`` walks the dataclasses, refuses an unknown key (naming it and
listing the valid ones) or a value of the wrong type, and converts where that is lossless (an
int for a float field, YAML's ``1e-3`` string for a float). The ranges of the values are checked
by :mod:`wnet.tasks.validate`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from wnet.tasks.config import Config
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


def parse_override(arg: str) -> tuple[str, Any]:
    """``model.k=32`` -> ('model.k', 32); the value is parsed as YAML (numbers, lists, bools)."""
    if "=" not in arg:
        raise ConfigError(f"override '{arg}' is not of the form key=value")
    key, raw = arg.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one
    silently, so a second ``train:`` block would drop the first without a word)."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    first: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in first:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first given at line {first[key] + 1})",
                key_node.start_mark,
            )
        first[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with open(path) as f:
            data = yaml.load(f, Loader=UniqueKeyLoader) or {}  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    return data


def parse_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``key=value`` overrides, each key and
    type checked; the ranges are checked by :func:`wnet.tasks.validate.load_config`."""
    cfg = Config()
    if path:
        for key, value in _read_yaml(Path(path)).items():
            try:
                set_key(cfg, key, value)
            except ConfigError as e:
                raise ConfigError(f"{path}: {e}") from None
    for arg in overrides or []:
        key, value = parse_override(arg)
        set_key(cfg, key, value)
    return cfg


def config_to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def _leaves(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        sub = isinstance(v, dict) and key in {f.name for f in dataclasses.fields(Config)}
        out += _leaves(v, f"{key}.") if sub else [(key, v)]
    return out


def config_from_dict(data: dict, strict: bool = True) -> Config:
    """Rebuild a Config from a saved dict (checkpoints).

    Unknown keys are errors; with ``strict=False`` (a checkpoint written by an older version) keys
    this version no longer has are skipped, with a note naming them.
    """
    cfg = Config()
    skipped = []
    for key, value in _leaves(data):
        try:
            set_key(cfg, key, value)
        except ConfigError:
            if strict:
                raise
            skipped.append(key)
    if skipped:
        print(f"note: the saved config has keys this version does not know, skipped: {', '.join(skipped)}")
    return cfg


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
