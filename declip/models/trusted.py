"""Which classes a configuration (perhaps a downloaded one) may build: declip's own backbones, nothing else."""

from __future__ import annotations

from typing import Any

from torch import nn

from declip.config import import_class
from declip.errors import ConfigError

PREFIX = "declip.models."


def backbone_class(class_path: str, where: str = "config") -> type[nn.Module]:
    """The backbone class ``class_path`` names, refused (one line naming ``where``) unless it is an ``nn.Module``
    defined in ``declip.models``: only declip's own modules are ever imported to find out."""
    if not class_path.startswith(PREFIX):
        raise ConfigError(f"{where}: backbone {class_path!r} is not a declip model; refusing to import it")
    cls = import_class(class_path)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__.startswith(PREFIX)):
        raise ConfigError(f"{where}: {class_path!r} is not a declip backbone class; refusing to build it")
    return cls


def checked_class(config: Any, where: str = "config") -> type[nn.Module]:
    """The class a backbone's ``{"class_path", "init_args"}`` names, checked by :func:`backbone_class`."""
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: a backbone is a {{class_path, init_args}} mapping; got {type(config).__name__}")
    return backbone_class(str(config.get("class_path", "")), where)


def build_backbone(config: dict[str, Any], where: str = "config") -> nn.Module:
    """A backbone from its ``{"class_path", "init_args"}``, checked by :func:`checked_class` first."""
    return checked_class(config, where)(**config.get("init_args", {}))
