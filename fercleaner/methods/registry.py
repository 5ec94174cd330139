"""One front door for methods: register with a decorator, build with `create_method(name, ...)`."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from fercleaner.errors import RegistryError

if TYPE_CHECKING:  # the base class imports torch; a recipe check needs none of it
    from fercleaner.methods.base import Method, MethodContext

_METHODS: dict[str, type[Method]] = {}
#: Modules that register built-in methods on import; imported lazily on first lookup.
_BUILTIN_MODULES = (
    "fercleaner.methods.baseline",
    "fercleaner.methods.mtac",
    "fercleaner.methods.uapl",
    "fercleaner.methods.poi",
)


def register_method(
    name: str, *, options: type | None = None
) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: make `cls` available as `create_method(name, ...)`.

    `options` is the method's frozen options dataclass (one docstring per field, range
    rules in a `checks` class table); recipes' `method.options` are validated against it
    by `fercleaner.config` before any work starts, and the method receives an instance
    as `MethodContext.options`. A method without options leaves it out.
    """

    def decorator(cls: type[Method]) -> type[Method]:
        if name in _METHODS and _METHODS[name] is not cls:
            raise RegistryError(f"method {name!r} is registered twice ({_METHODS[name]} and {cls})")
        cls.name = name
        if options is not None:
            cls.options_class = options
        _METHODS[name] = cls
        return cls

    return decorator


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a built-in not written yet is simply absent
            if exc.name != module:
                raise


def list_methods() -> list[str]:
    """Names of every registered method, sorted (the built-ins without importing them)."""
    from fercleaner.methods.options import BUILTIN_OPTIONS

    return sorted(set(BUILTIN_OPTIONS) | set(_METHODS))


def check_method(name: str) -> None:
    """Raise unless `name` is a registered method; the error lists them and the closest.

    Raises:
        RegistryError: an unknown name.
    """
    names = list_methods()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RegistryError(f"unknown method {name!r}; available: {', '.join(names)}.{hint}")


def get_method_class(name: str) -> type[Method]:
    """The class registered as `name` (importing the built-ins, and torch, on first use)."""
    check_method(name)
    _load_builtins()
    return _METHODS[name]


def get_options_class(name: str) -> type:
    """The options dataclass of method `name`; a built-in's without importing torch."""
    from fercleaner.methods.options import BUILTIN_OPTIONS

    if name in BUILTIN_OPTIONS:
        return BUILTIN_OPTIONS[name]
    return get_method_class(name).options_class


def create_method(name: str, context: MethodContext) -> Method:
    """Build the method registered as `name` for the data described by `context`."""
    return get_method_class(name)(context)
