"""Method options: the one home of "a recipe's options belong to its method", and the value rules.

Each method registers a frozen options dataclass whose `checks` table uses `at_least`,
`greater_than`, `in_range` and `one_of`; `options_from_dict` and the recipe loader check
`method.options` against it with the recipe's machinery, in one message format.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fercleaner.config.fields import convert, raise_problems, type_name, unknown_keys
from fercleaner.config.recipe import MethodConfig

#: A method's options dataclass (each method registers one, see `methods.registry`).
_Options = TypeVar("_Options")


@dataclass(frozen=True)
class Check:
    """A value rule for one method option; `expected` completes "expected a number ..."."""

    accepts: Callable[[Any], bool]
    """True when a value of the field's type is allowed."""
    expected: str
    """The rule in words, e.g. `>= 0` or `in [0, 1)`."""
    names_type: bool = False
    """`expected` already says the whole expectation (choices), so no type noun goes before it."""


def at_least(low: float) -> Check:
    """Value >= `low`."""
    return Check(lambda v: v >= low, f">= {low}")


def greater_than(low: float) -> Check:
    """Value > `low`."""
    return Check(lambda v: v > low, f"> {low}")


def in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """Value in the interval from `low` to `high`, each end closed unless marked open."""

    def accepts(v: Any) -> bool:
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    brackets = ("(" if low_open else "[", ")" if high_open else "]")
    return Check(accepts, f"in {brackets[0]}{low}, {high}{brackets[1]}")


def one_of(*choices: Any) -> Check:
    """Value is one of `choices`."""
    return Check(lambda v: v in choices, "one of " + ", ".join(map(repr, choices)), True)


def method_options(method: MethodConfig, name: str) -> Any:
    """The typed options the registered method `name` trains with under `method`.

    The one home of the rule "a recipe's options belong to its method": `method.options`
    are `method.name`'s; any other method (the others of a `--method all` run, or one
    trained from a recipe named for another) gets its defaults instead of options it
    would reject. `without_foreign_options` applies the same rule to a recipe file
    whose method an override replaces.

    Raises:
        RegistryError: `name` is not a registered method.
        ConfigError: the options do not fit `name`'s options dataclass.
    """
    from fercleaner.methods.registry import get_options_class

    options_class = get_options_class(name)
    owner = method.options_for or method.name
    return options_from_dict(options_class, method.options if name == owner else {})


def options_from_dict(
    options_class: type[_Options], raw: Mapping[str, Any] | None, *, source: str | None = None
) -> _Options:
    """Build a method's frozen options dataclass from plain data, checked like a recipe.

    Every unknown key, wrong type and out-of-range value is reported at once, one line
    per key: `method.options.KEY: expected WHAT, got VALUE`. Range and choice rules come
    from the dataclass's `checks` table (`at_least`, `greater_than`, `in_range`, `one_of`).

    Raises:
        ConfigError: listing every problem.
    """
    errors: list[str] = []
    options = _build_options(options_class, raw, errors)
    raise_problems(errors, source or f"{options_class.__name__}")
    return options


def method_option_problems(method: MethodConfig) -> list[str]:
    """Problems in `method.options` against the options dataclass registered with `method.name`.

    Only a single registered name owns options; `all`, a comma list or an unknown name
    (refused later by the registry, with the closest match) are not checked here.
    """
    from fercleaner.methods.registry import get_options_class, list_methods

    owner = method.options_for or method.name
    if owner not in list_methods():
        return []
    errors: list[str] = []
    _build_options(get_options_class(owner), method.options, errors)
    return errors


def without_foreign_options(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Keep the recipe's `method.options` with their method when an override changes `name`.

    A recipe's options belong to its `method.name` (`method_options`; `quick` sets
    baseline options). With `method.name=mtac` (or `--method mtac`) they would be rejected
    by MTAC, so they are dropped; with `all` or a list that still trains the recipe's
    method they stay, marked `options_for` that method. Options given as overrides are
    applied afterwards, so `method.options.x=1` still reaches the new method.
    """
    method = raw.get("method")
    names = [
        o.partition("=")[2].strip()
        for o in overrides
        if o.partition("=")[0].strip() == "method.name"
    ]
    if not isinstance(method, dict) or not names:
        return raw
    own = str(method.get("name", "baseline"))
    new = names[-1]
    if new == own:
        return raw
    trained = [n.strip() for n in new.split(",")]
    if method.get("options") and (new == "all" or own in trained):
        return {**raw, "method": {**method, "options_for": own}}
    return {**raw, "method": {k: v for k, v in method.items() if k != "options"}}


def _build_options(options_class: type[_Options], raw: Any, errors: list[str]) -> _Options:
    """Instantiate `options_class` from `raw`, appending one line per problem to `errors`.

    A field with a problem keeps its default, so the other fields are still checked.
    """
    prefix = "method.options."
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        errors.append(f"method.options: expected a mapping of option names, got {raw!r}")
        return options_class()
    names = {f.name for f in dataclasses.fields(options_class)}
    errors.extend(unknown_keys(raw, names, prefix))
    hints = typing.get_type_hints(options_class)
    checks: Mapping[str, Check] = getattr(options_class, "checks", {})
    kwargs: dict[str, Any] = {}
    for name in (key for key in raw if key in names):
        value, hint, check = raw[name], hints[name], checks.get(name)
        converted, ok = convert(value, hint)
        if ok and (converted is None or check is None or check.accepts(converted)):
            kwargs[name] = converted
        else:
            errors.append(f"{prefix}{name}: expected {_expectation(hint, check)}, got {value!r}")
    return options_class(**kwargs)


def _expectation(hint: Any, check: Check | None) -> str:
    """What an option of type `hint` under `check` must be, in words (`null or an integer >= 1`)."""
    args = (
        typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else ()
    )
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    nouns = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    noun = nouns.get(base, type_name(base))
    if check is None:
        what = noun
    elif check.names_type:
        what = check.expected
    else:
        what = f"{noun} {check.expected}"
    return f"null or {what}" if optional else what
