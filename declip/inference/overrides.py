"""A loaded model with constructor settings of its backbone changed and the same trained weights: to score settings
that need no training (``heavy_rho``, ``heavy_share``, ...) without a new model folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
import yaml

from declip.config import config_of, instantiate
from declip.errors import ConfigError
from declip.inference.loaded import LoadedModel


def parse_overrides(pairs: list[str]) -> dict:
    """``["NAME=VALUE", ...]`` as a dict, each VALUE read as YAML (``null``, numbers, lists)."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"{pair!r}: give NAME=VALUE, e.g. heavy_rho=0.05")
        try:
            out[name] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            problem = str(error).splitlines()[0]
            raise ConfigError(
                f"{pair!r}: VALUE is not YAML ({problem}); e.g. heavy_rho=0.05, heavy_share=null"
            ) from None
    return out


def overridden(loaded: LoadedModel, overrides: dict) -> LoadedModel:
    """``loaded`` with its backbone rebuilt from its constructor settings updated by ``overrides``, same weights.
    Refused (:class:`ConfigError`, starting with the settings' names): a name the backbone does not take, a value it
    refuses, a setting that shapes the weights, and one that only sets initial weights (the trained ones replace
    them, so the score would be the unchanged model's). ``loaded``'s model is changed in place."""
    config = config_of(loaded.model.backbone)
    unknown = sorted(set(overrides) - set(config["init_args"]))
    if unknown:
        settings = ", ".join(config["init_args"])
        raise ConfigError(f"{unknown[0]}: not a setting of {config['class_path']} (its settings: {settings})")
    try:
        backbone = instantiate({**config, "init_args": {**config["init_args"], **overrides}})
    except (ConfigError, TypeError, ValueError) as error:
        raise ConfigError(f"{', '.join(overrides)}: {error}") from None
    for name in overrides:
        try:
            moved = initial_weights_moved(config, name, overrides[name])
        except (ConfigError, TypeError, ValueError):  # valid only with another override: judged together above
            continue
        if moved:
            raise ConfigError(
                f"{name}: it sets initial weights only ({', '.join(moved)}), which the trained weights "
                "replace, so the score would be the unchanged model's; train with it instead"
            )
    try:
        backbone.load_state_dict(loaded.model.backbone.state_dict())
    except RuntimeError as error:  # a setting that shapes the parameters (K, bands, ...)
        first = str(error).strip().splitlines()[-1].strip()
        refusal = f"{', '.join(overrides)}: the trained weights do not fit the changed {config['class_path']} ({first})"
        raise ConfigError(refusal) from None
    loaded.model.backbone = backbone.to(loaded.device).eval()
    rebuilt = LoadedModel.from_module_model(loaded.model, loaded.sample_rate, loaded.channels, loaded.info)
    return replace(rebuilt, precision=loaded.precision)


def alternatives(load: Callable[[], LoadedModel], overrides: dict, choices: list[dict]) -> dict[str, LoadedModel]:
    """For each of ``choices`` (one or more settings), by ``"NAME=VALUE"``: a fresh ``load()`` with those settings on
    top of ``overrides``, the candidates :mod:`declip.inference.choice` picks among beside the model's own. Refused
    as :func:`overridden` refuses."""
    return {
        ", ".join(f"{name}={value}" for name, value in choice.items()): overridden(load(), overrides | choice)
        for choice in choices
    }


def initial_weights_moved(config: dict, name: str, value) -> list[str]:
    """Weights of the backbone ``config`` builds (same seed) whose initial values change when ``name`` is ``value``
    (same shapes: a setting that shapes them is refused when the trained weights are loaded)."""
    states = []
    for init_args in (config["init_args"], {**config["init_args"], name: value}):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            states.append(instantiate({**config, "init_args": init_args}).state_dict())
    before, after = states
    return [k for k, v in before.items() if k in after and after[k].shape == v.shape and not torch.equal(after[k], v)]
