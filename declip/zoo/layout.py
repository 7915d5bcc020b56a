"""The Hub layout of a released model: what each file holds and how ``config.json`` is read back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from declip.errors import ConfigError
from declip.models.trusted import backbone_class

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
TRAINING_CONFIG = "training_config.yaml"


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a model folder, checked for what loading needs."""
    path = folder / CONFIG
    if not path.is_file():
        raise ConfigError(f"{folder}: no {CONFIG}; a declip model folder holds {CONFIG} and {WEIGHTS}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error}); re-export the model with declip zoo export") from error
    missing = [key for key in ("sample_rate", "channels", "backbone") if key not in config]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}; re-export the model with declip zoo export")
    backbone_class(str(config["backbone"].get("class_path", "")), str(path))  # only declip's own, never imported else
    return config
