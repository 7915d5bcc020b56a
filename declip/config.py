"""Objects as ``{"class_path", "init_args"}`` configs and back: the format LightningCLI uses.

Decorate an ``__init__`` with :func:`capture_init` and :func:`config_of` returns the arguments it
was built with, so a checkpoint can rebuild the object without pickling it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from declip.errors import ConfigError


def capture_init(init: Callable) -> Callable:
    """Record the bound arguments of the outermost ``__init__`` call on ``self._init_args``."""

    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args: Any, **kwargs: Any) -> None:
        if "_init_args" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop("self")
            object.__setattr__(self, "_init_args", arguments)
        init(self, *args, **kwargs)

    return wrapper


def config_of(obj: Any) -> dict[str, Any]:
    """``{"class_path": "pkg.mod.Class", "init_args": {...}}`` of an object built by a captured init."""
    if "_init_args" not in getattr(obj, "__dict__", {}):
        raise ConfigError(
            f"{type(obj).__name__} does not record its constructor arguments, so checkpoints could not rebuild it: "
            "decorate its __init__ with declip.config.capture_init"
        )
    cls = type(obj)
    args = {k: _plain(v) for k, v in obj._init_args.items()}
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": args}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def import_class(class_path: str) -> type:
    """The class named by a dotted path, with a one-line error when it does not exist."""
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(
            f"unknown class_path {class_path!r}: check the spelling and that its package is installed"
        ) from error


def instantiate(config: Any) -> Any:
    """Build ``config`` when it is a ``{"class_path", "init_args"}`` dict; return other values as they are."""
    if isinstance(config, dict) and "class_path" in config:
        return import_class(config["class_path"])(**config.get("init_args", {}))
    return config
