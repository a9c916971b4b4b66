"""Typed configuration files: a frozen dataclass checked against its annotations.

One dialect for every config of the package and its plugins (``fem-ms generate``,
``fem-ms train-*``): a TOML (or JSON) file whose top-level keys are the fields of a dataclass,
tables for nested dataclasses or free-form ``dict`` fields, and an optional ``kind`` naming the
config. :func:`check_fields` checks every field's value against its annotation and the range in
its metadata, so that a wrongly typed value names its key (``energy = "high"``: "key 'energy'
must be a number, got 'high' (str)") however the config was made, from a file or by keyword;
:func:`config_from_mapping` also names unknown keys (with the closest known one) and missing
required ones, and descends into nested sections.

Written here rather than taken from pydantic: the checks needed are few (scalars, optionals,
literals, homogeneous tuples, nested sections, numeric ranges), and the dataclasses stay plain
Python with no dependency that the core would otherwise not need.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

__all__ = ["ConfigFile", "at_least", "greater_than", "check_fields", "config_from_mapping", "load_config",
           "read_config_file", "plain_dict", "keyword_signature", "with_overrides", "toml_text"]


def at_least(low: float) -> dict:
    """Field metadata: the value must be >= ``low``."""
    return {"at_least": low}


def greater_than(low: float) -> dict:
    """Field metadata: the value must be > ``low``."""
    return {"greater_than": low}


def read_config_file(path) -> dict:
    """The mapping in a ``.toml`` or ``.json`` file; ``FileNotFoundError``/``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    try:
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"config {path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None


def _describe(annotation) -> str:
    """``annotation`` in words, for error messages."""
    if annotation is Any:
        return "any value"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _describe(a) for a in args)
    if origin is tuple:
        return f"a list (each item {_describe(args[0])})" if args else "a list"
    if origin is dict or annotation is dict:
        return "a table (key = value pairs)"
    if dataclasses.is_dataclass(annotation):
        return f"a table of {annotation.__name__} settings"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


_NO_MATCH = object()


def _coerce(value, annotation):
    """``value`` as ``annotation`` (int → float, list → tuple), or ``_NO_MATCH``."""
    if annotation is Any:
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return value if any(value == a and type(value) is type(a) for a in args) else _NO_MATCH
    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is type(None):
                if value is None:
                    return None
                continue
            coerced = _coerce(value, option)
            if coerced is not _NO_MATCH:
                return coerced
        return _NO_MATCH
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _NO_MATCH
        items = [_coerce(v, args[0]) for v in value] if args else list(value)
        return _NO_MATCH if any(v is _NO_MATCH for v in items) else tuple(items)
    if origin is dict or annotation is dict:
        return dict(value) if isinstance(value, Mapping) else _NO_MATCH
    if annotation is bool:
        return value if isinstance(value, bool) else _NO_MATCH
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO_MATCH
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return _NO_MATCH
    if annotation is str:
        return value if isinstance(value, str) else _NO_MATCH
    if annotation is Path:
        return Path(value) if isinstance(value, (str, os.PathLike)) and str(value) else _NO_MATCH
    if dataclasses.is_dataclass(annotation):
        return value if isinstance(value, annotation) else _NO_MATCH
    raise TypeError(f"typed_config: unsupported annotation {annotation!r}")


def _check_range(where: str, name: str, value, metadata) -> None:
    numbers = value if isinstance(value, tuple) else (value,)
    for number in numbers:
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            continue
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"{where}: key {name!r} must be finite, got {number!r}")
        if "at_least" in metadata and number < metadata["at_least"]:
            raise ValueError(f"{where}: key {name!r} must be >= {metadata['at_least']}, got {value!r}")
        if "greater_than" in metadata and not number > metadata["greater_than"]:
            raise ValueError(f"{where}: key {name!r} must be > {metadata['greater_than']}, got {value!r}")


def check_fields(config, where: str) -> None:
    """Check (and normalise in place: int → float, list → tuple) every field of the dataclass
    instance ``config`` against its annotation and range metadata.

    Raises ``TypeError`` for a value of the wrong type and ``ValueError`` for one out of range,
    both naming ``where`` and the key. Call it from ``__post_init__``.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        coerced = _coerce(value, hints[field.name])
        if coerced is _NO_MATCH:
            raise TypeError(f"{where}: key {field.name!r} must be {_describe(hints[field.name])}, "
                            f"got {value!r} ({type(value).__name__})")
        _check_range(where, field.name, coerced, field.metadata)
        if coerced is not value:
            object.__setattr__(config, field.name, coerced)


def config_from_mapping(cls, data: Mapping, where: str, kind: str | None = None):
    """An instance of the dataclass ``cls`` from ``data`` (e.g. a parsed TOML file).

    Unknown keys are named (with the closest known key), missing required keys too; a nested
    dataclass field is read from its own table (``[section]``), its errors name the section.
    ``kind``: the value an optional ``kind`` key must have (the dialect of ``fem-ms generate``).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{where}: expected a table of settings, got {type(data).__name__}")
    data = dict(data)
    if kind is not None and "kind" in data:
        given = data.pop("kind")
        if given != kind:
            raise ValueError(f"{where}: kind must be {kind!r} for this command, got {given!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, known, 1))
                 else repr(key) for key in unknown]
        raise ValueError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                         f"known: {sorted(known)}")
    missing = [name for name, f in known.items() if name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where}: missing key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        section = hints[name]
        if dataclasses.is_dataclass(section) and isinstance(value, Mapping):
            data[name] = config_from_mapping(section, value, f"{where} [{name}]")
    return cls(**data)


def load_config(cls, source, where: str):
    """An instance of the dataclass ``cls`` from a ``.toml``/``.json`` path or a mapping; errors
    name the file and begin with ``where`` (e.g. "train-basis config"). The optional ``kind``
    key must equal ``cls.kind`` when the class has one."""
    if not isinstance(source, (str, os.PathLike)):
        return config_from_mapping(cls, source, where, getattr(cls, "kind", None))
    data = read_config_file(source)
    try:
        return config_from_mapping(cls, data, where, getattr(cls, "kind", None))
    except (TypeError, ValueError) as exc:  # the checks in the dataclass do not know the file
        raise type(exc)(f"{source}: {exc}") from None


class ConfigFile:
    """Base of a config dataclass that is read from a file: ``where`` names it in errors
    (e.g. "train-basis config"), ``kind`` is the value of its optional ``kind`` key."""

    where: typing.ClassVar[str] = "config"
    kind: typing.ClassVar[str | None] = None

    @classmethod
    def load(cls, source):
        """From a ``.toml``/``.json`` file or a mapping (:func:`load_config`)."""
        return load_config(cls, source, cls.where)


def plain_dict(config, exclude=(), absolute=()) -> dict:
    """The dataclass ``config`` as plain data (paths as strings, nested sections as dicts), for
    a checkpoint or a JSON file: without the fields in ``exclude``, and with the path fields in
    ``absolute`` made absolute (a file, wherever the process runs)."""
    def plain(value):
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(plain(v) for v in value)
        return value

    data = {key: plain(value) for key, value in dataclasses.asdict(config).items() if key not in exclude}
    for key in absolute:
        data[key] = str(Path(data[key]).resolve())
    return data


def keyword_signature(cls, positional: tuple[str, ...] = ()) -> inspect.Signature:
    """The signature of a function ``f(*positional, **settings)`` that builds ``cls`` from its
    arguments: every field as a parameter with the field's default, so that ``help(f)`` and
    anything that inspects ``f`` see the config's keys and defaults (one source of both)."""
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    parameters = []
    for name in list(positional) + [name for name in fields if name not in positional]:
        field = fields[name]
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if name in positional else inspect.Parameter.KEYWORD_ONLY
        default = field.default if field.default is not dataclasses.MISSING else \
            field.default_factory() if field.default_factory is not dataclasses.MISSING else inspect.Parameter.empty
        parameters.append(inspect.Parameter(name, kind, default=default, annotation=hints[name]))
    return inspect.Signature(parameters)


def with_overrides(data: Mapping, overrides: Mapping) -> dict:
    """A copy of the config mapping ``data`` with ``overrides`` set: ``{"samples": 4}`` replaces a
    top-level key, ``{"train.epochs": 1}`` a key of the ``[train]`` table. The result goes
    through the same checks as a file (:func:`config_from_mapping`): an unknown or wrongly typed
    key is named there."""
    data = dict(data)
    for dotted, value in overrides.items():
        *sections, key = dotted.split(".")
        table = data
        for depth, section in enumerate(sections):
            inner = table.get(section, {})
            if not isinstance(inner, Mapping):
                raise ValueError(f"override {dotted}: {'.'.join(sections[:depth + 1])!r} is a value, not a table")
            table[section] = table = dict(inner)
        table[key] = value
    return data


def _toml_value(value, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # inf, -inf and nan are TOML's spellings too
    if isinstance(value, (str, os.PathLike)):
        return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item, key) for item in value) + "]"
    raise TypeError(f"toml_text: key {key!r} holds {type(value).__name__}, which TOML cannot hold")


def toml_text(data: Mapping, _table: str = "") -> str:
    """``data`` (strings, paths, numbers, booleans, lists of them, nested tables) as TOML text that
    ``tomllib.loads`` reads back as ``data``; keys whose value is None are left out (TOML has no
    null: a config field whose default is None takes it again when the text is read)."""
    lines = [f"{key} = {_toml_value(value, key)}" for key, value in data.items()
             if value is not None and not isinstance(value, Mapping)]
    for key, value in data.items():
        if isinstance(value, Mapping):
            name = f"{_table}.{key}" if _table else key
            lines += ["", f"[{name}]", toml_text(value, name).rstrip("\n")]
    return "\n".join(lines).lstrip("\n") + "\n"
