"""Typed dataclasses from plain data: the checking machinery shared by recipes and method options.

Each function appends one line per problem (naming the dotted key the user typed) instead of
raising, so a recipe's unknown keys, wrong types and bad values are all reported at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from fercleaner.errors import ConfigError

#: `1e-3`, `5E+4`, `-2.5e-1`: YAML 1.1 (PyYAML) reads an exponent without a dot as a
#: string, so a float field takes these strings as the numbers they are.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def build_dataclass(cls: type, raw: Any, prefix: str, errors: list[str]) -> Any:
    """Instantiate dataclass `cls` from `raw`, appending every problem to `errors`.

    Nested dataclass fields are built the same way under `prefix` + their name; a field
    with a type error keeps its default, so the checks after it still see everything else.
    """
    where = prefix.rstrip(".") or "recipe"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping of keys, got {raw!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    errors.extend(unknown_keys(raw, names, prefix))
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        key = f"{prefix}{f.name}"
        value = raw[f.name]
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = build_dataclass(hint, value, key + ".", errors)
            continue
        converted, ok = convert(value, hint)
        if ok:
            kwargs[f.name] = converted
        else:
            errors.append(f"{key}: expected {type_name(hint)}, got {value!r}")
    return cls(**kwargs)


def unknown_keys(raw: Mapping[str, Any], names: set[str], prefix: str) -> list[str]:
    """One line per key of `raw` that is not in `names`, with the closest valid key."""
    lines = []
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), sorted(names), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            lines.append(
                f"{prefix}{key}: unknown key{hint}; valid keys here: {', '.join(sorted(names))}"
            )
    return lines


def convert(value: Any, hint: Any) -> tuple[Any, bool]:
    """Check `value` against a simple type hint; return (converted value, ok)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            converted, ok = convert(value, option)
            if ok:
                return converted, True
        return value, False
    if hint is type(None):
        return None, value is None
    if hint is bool:
        return value, isinstance(value, bool)
    if hint is int:
        return value, isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # finite: 1e999 and .inf would pass every "> 0" check
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            return float(value), math.isfinite(float(value))
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (float(value) if ok else value), ok and math.isfinite(value)
    if hint is str:
        return value, isinstance(value, str)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value, False
        (item_type, *_) = typing.get_args(hint)
        items = [convert(v, item_type) for v in value]
        return tuple(v for v, _ in items), all(ok for _, ok in items)
    if origin is dict:
        return dict(value or {}), value is None or isinstance(value, dict)
    return value, False


def type_name(hint: Any) -> str:
    """A type hint in words for error lines (`int or str`, `a list of str`, `null`)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(type_name(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is tuple:
        return "a list of " + type_name(typing.get_args(hint)[0])
    if typing.get_origin(hint) is dict:
        return "a mapping"
    if hint is float:
        return "a finite float"
    return getattr(hint, "__name__", str(hint))


def raise_problems(errors: list[str], source: str) -> None:
    """Raise one `ConfigError` listing every problem in `source`; nothing when there is none."""
    if errors:
        raise ConfigError(f"{len(errors)} problem(s) in {source}:\n  - " + "\n  - ".join(errors))
