"""The model zoo: released declippers by name, the Hub layout, one loader, export and push.

Attributes load lazily: ``declip restore`` reads the default name without importing the loader."""

from __future__ import annotations

from typing import Any

from declip.zoo.registry import DEFAULT_MODEL, ZooEntry, entries, entry

__all__ = ["DEFAULT_MODEL", "PushToHub", "ZooEntry", "entries", "entry", "export_checkpoint", "load_model", "push"]


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from declip.zoo.load import load_model

        return load_model
    if name == "export_checkpoint":
        from declip.zoo.export import export_checkpoint

        return export_checkpoint
    if name == "PushToHub":
        from declip.zoo.callback import PushToHub

        return PushToHub
    if name == "push":
        from declip.zoo.hub import push

        return push
    raise AttributeError(f"module 'declip.zoo' has no attribute {name!r}")
