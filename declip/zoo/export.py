"""Export a Lightning checkpoint to the Hub layout: safetensors weights, config, card, training config."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import save_file

import declip
from declip.errors import ConfigError
from declip.zoo.card import render
from declip.zoo.layout import CARD, CONFIG, TRAINING_CONFIG, WEIGHTS


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # pickle, zip and torch errors of a foreign or broken file
        raise ConfigError(f"{path}: not a checkpoint torch can read ({type(error).__name__})") from error
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    if "backbone" not in hparams or "state_dict" not in checkpoint:
        raise ConfigError(
            f"{path}: not a declip checkpoint (no declip hyper-parameters); pass one written by declip fit"
        )
    return checkpoint


def model_config(checkpoint: dict[str, Any], metrics: dict | None = None) -> dict[str, Any]:
    """Everything a user and the loader need to know about a trained model, as plain JSON."""
    hparams = checkpoint["hyper_parameters"]
    data = checkpoint.get("datamodule_hyper_parameters", {})
    losses = hparams.get("losses", [])
    regime = "+".join(loss["class_path"].rsplit(".", 1)[-1].removesuffix("Loss").lower() for loss in losses)
    regime = {"supervised": "supervised", "mc": "mc", "mc+ei": "mc+ei"}.get(regime, regime)
    weights = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    corpus = data.get("corpus", {})
    return {
        "declip_version": declip.__version__,
        "sample_rate": hparams["sample_rate"],
        "channels": hparams["backbone"]["init_args"].get("channels", 1),
        "backbone": hparams["backbone"],
        "consistent_output": hparams.get("consistent_output", False),
        "params": int(sum(v.numel() for v in weights.values())),
        "regime": regime,
        "losses": losses,
        "training": {
            "clip_levels": {
                "input_sdr_range": data.get("input_sdr_range"),
                "threshold_range": data.get("threshold_range"),
            },
            "data": corpus.get("class_path", data.get("_class_path", "not recorded")).rsplit(".", 1)[-1]
            + (f" ({corpus['init_args'].get('source')})" if corpus.get("init_args", {}).get("source") else ""),
            "segment_seconds": data.get("segment_seconds"),
            "global_step": checkpoint.get("global_step"),
            "lr": hparams.get("lr"),
            "lr_schedule": hparams.get("lr_schedule", "constant"),
        },
        "metrics": metrics or {},
    }


def _training_config_of(path: Path) -> Path | None:
    """The LightningCLI ``config.yaml`` of the run that wrote ``path`` (``RUN/checkpoints/x.ckpt``)."""
    candidate = path.resolve().parent.parent / "config.yaml"
    return candidate if candidate.is_file() else None


def export_checkpoint(
    checkpoint_path: str | Path,
    out: str | Path,
    name: str | None = None,
    metrics: dict | None = None,
    training_command: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out/`` in the Hub layout from a ``declip fit`` checkpoint; returns ``out``.

    ``metrics``: ``{evaluation name: {input SDR: ΔSDR, ..., "mean": ΔSDR}}`` for the card's table.
    Refuses to write into a non-empty folder unless ``overwrite``; writes in a temporary folder and
    renames, so a failed export leaves nothing half-written."""
    checkpoint_path, out = Path(checkpoint_path), Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose another folder or pass --overwrite")
    checkpoint = _read_checkpoint(checkpoint_path)
    config = model_config(checkpoint, metrics)
    weights = {
        k.removeprefix("model."): v.contiguous() for k, v in checkpoint["state_dict"].items() if k.startswith("model.")
    }
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file(weights, tmp / WEIGHTS, metadata={"format": "pt", "declip_version": declip.__version__})
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        source = _training_config_of(checkpoint_path)
        if source is not None:
            training = yaml.safe_load(source.read_text())
            (tmp / TRAINING_CONFIG).write_text(yaml.safe_dump(training, sort_keys=False))
        command = training_command or ("declip fit --config " + TRAINING_CONFIG if source is not None else None)
        (tmp / CARD).write_text(render(config, name or out.name, command))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
