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

from declip._version import __version__
from declip.errors import ConfigError
from declip.training.checkpoint import load_checkpoint
from declip.zoo.card import render
from declip.zoo.layout import CARD, CONFIG, TRAINING_CONFIG, WEIGHTS


def read_checkpoint(path: Path) -> dict[str, Any]:
    checkpoint = load_checkpoint(path)  # weights_only: a crafted file is refused, never run
    hparams = checkpoint.get("hyper_parameters", {})
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
        "declip_version": __version__,
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
    check_target(out, overwrite)
    checkpoint = read_checkpoint(checkpoint_path)
    config = model_config(checkpoint, metrics)
    weights = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    source = _training_config_of(checkpoint_path)
    training = yaml.safe_load(source.read_text()) if source is not None else None
    command = training_command or ("declip fit --config " + TRAINING_CONFIG if source is not None else None)
    return write_folder(weights, config, out, name or out.name, command, training)


def check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose another folder or pass --overwrite")


def write_folder(
    weights: dict[str, torch.Tensor],
    config: dict[str, Any],
    out: Path,
    name: str,
    command: str | None,
    training_config: dict | None = None,
) -> Path:
    """Write a model folder in the Hub layout in a temporary folder, then rename it to ``out``."""
    weights = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file(weights, tmp / WEIGHTS, metadata={"format": "pt", "declip_version": __version__})
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        if training_config is not None:
            (tmp / TRAINING_CONFIG).write_text(yaml.safe_dump(training_config, sort_keys=False))
        (tmp / CARD).write_text(render(config, name, command))
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def export_adapted(
    model,
    base_config: dict[str, Any],
    report: dict[str, Any],
    settings: dict[str, Any],
    base: str,
    out: str | Path,
    command: str,
    overwrite: bool = False,
) -> Path:
    """Write an adapted model (:func:`declip.training.adapt.adapt`) in the Hub layout; its config and
    card record the base model, the recordings, the steps and time. The base model's scores are
    dropped: they do not describe the adapted one."""
    out = Path(out)
    check_target(out, overwrite)
    config = dict(base_config)
    config["declip_version"] = __version__
    config["metrics"] = {}
    files = report["files"]
    config["adapted"] = {
        "from": base,
        "files": files[:50] + ([f"... and {len(files) - 50} more"] if len(files) > 50 else []),
        "file_count": len(files),
        "clipped_files": report["clipped_files"],
        "audio_seconds": report["audio_seconds"],
        "steps": report["steps"],
        "seconds": report["seconds"],
        "interrupted": report["interrupted"],
        "losses": settings["losses"],
        "lr": settings["lr"],
    }
    return write_folder(model.state_dict(), config, out, out.name, command)
