"""``declip zoo blend``: two model folders made one :class:`~declip.models.Blend` model folder, no training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import load_file

from declip._version import __version__
from declip.errors import ConfigError
from declip.models import Blend
from declip.zoo.export import check_target, write_folder
from declip.zoo.layout import TRAINING_CONFIG, WEIGHTS, read_config
from declip.zoo.registry import entries, entry


def model_folder(ref: str | Path) -> Path:
    """A zoo name's folder (its weights shipped), or a model folder in the Hub layout."""
    if str(ref) in entries():
        folder = entry(str(ref)).folder
    else:
        folder = Path(ref).expanduser()
    if not (folder / WEIGHTS).is_file():
        raise ConfigError(f"{ref}: no {WEIGHTS} there; pass a zoo name shipped with declip, or a model folder")
    return folder


def blend_folders(
    primary: str | Path,
    secondary: str | Path,
    out: str | Path,
    g: float = 1.25,
    span: int = 131072,
    name: str | None = None,
    metrics: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out/``: a model whose backbone is ``Blend(primary's, secondary's)`` with both weights; returns ``out``.
    The two must share sample rate and channels. The card and training configuration are the primary's (the
    secondary's stays in its own folder); ``config.json`` records both sources."""
    out = Path(out)
    Blend.check(g, span)
    check_target(out, overwrite)
    folders = model_folder(primary), model_folder(secondary)
    configs = [read_config(folder) for folder in folders]
    for key in ("sample_rate", "channels"):
        if configs[0][key] != configs[1][key]:
            raise ConfigError(
                f"{primary} and {secondary} differ in {key} ({configs[0][key]} and {configs[1][key]}); "
                "blend two models made for the same audio"
            )
    if any(c.get("consistent_output") for c in configs):
        raise ConfigError(f"{primary} or {secondary} has a consistent output head; Blend takes plain corrections")
    weights = {}
    for role, folder in zip(("primary", "secondary"), folders):
        for key, value in load_file(folder / WEIGHTS).items():
            if not key.startswith("backbone."):
                raise ConfigError(f"{folder / WEIGHTS}: weight {key!r} is not a backbone's; re-export the model")
            weights[f"backbone.{role}." + key.removeprefix("backbone.")] = value
    first, second = configs
    config: dict[str, Any] = {
        **{k: v for k, v in first.items() if k not in ("metrics", "params", "adapted")},
        "declip_version": __version__,
        "backbone": {
            "class_path": "declip.models.blend.Blend",
            "init_args": {
                "primary": first["backbone"],
                "secondary": second["backbone"],
                "channels": first["channels"],
                "g": g,
                "span": span,
            },
        },
        "consistent_output": False,
        "params": int(sum(v.numel() for v in weights.values())),
        "blend_of": {"primary": str(primary), "secondary": str(secondary)},
        "metrics": metrics or {},
    }
    training_path = folders[0] / TRAINING_CONFIG
    training = yaml.safe_load(training_path.read_text()) if training_path.is_file() else None
    command = f"declip zoo blend {primary} {secondary} {out.name} --g {g} --span {span}"
    return write_folder(weights, config, out, name or out.name, command, training)
