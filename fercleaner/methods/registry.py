"""One front door for methods: register with a decorator, build with `create_method(name, ...)`."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable

from fercleaner.errors import RegistryError
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
    """Names of every registered method, sorted."""
    _load_builtins()
    return sorted(_METHODS)


def get_method_class(name: str) -> type[Method]:
    """The class registered as `name`; an unknown name lists the valid ones and the closest."""
    _load_builtins()
    if name not in _METHODS:
        close = difflib.get_close_matches(name, list(_METHODS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RegistryError(
            f"unknown method {name!r}; available: {', '.join(sorted(_METHODS))}.{hint}"
        )
    return _METHODS[name]


def create_method(name: str, context: MethodContext) -> Method:
    """Build the method registered as `name` for the data described by `context`."""
    return get_method_class(name)(context)
