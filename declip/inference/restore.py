"""``restore()``: declip a recording with a trained model; the function behind ``declip restore``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torchaudio.functional as AF
from torch import Tensor

from declip.errors import ConfigError
from declip.inference.chunks import receptive_field, restore_chunked
from declip.inference.detect import detect_clip_level
from declip.models import Declipper
from declip.physics import Clipping


@dataclass
class LoadedModel:
    """A trained declipper with what inference needs to know about it."""

    model: Declipper
    sample_rate: int
    channels: int
    hop: int
    context: int

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> LoadedModel:
        from declip.training import DeclipModule

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such model file; pass a Lightning .ckpt written by declip fit")
        try:
            module = DeclipModule.load_from_checkpoint(path, map_location=device)
        except (KeyError, TypeError, RuntimeError) as error:
            raise ConfigError(f"{path}: not a declip checkpoint ({type(error).__name__}: {error})") from error
        return cls.from_module_model(module.model.eval(), module.hparams.sample_rate, module.channels)

    @classmethod
    def from_module_model(cls, model: Declipper, sample_rate: int, channels: int) -> LoadedModel:
        hop = getattr(model.backbone, "hop", 1)
        context = receptive_field(model, channels) + hop
        return cls(model, sample_rate, channels, hop, context)


@dataclass
class RestoreReport:
    clipped: bool
    high: list[float]
    low: list[float]
    clipped_fraction: float
    peak_in: float
    peak_out: float


def restore_array(
    audio: Tensor,
    sample_rate: int,
    model: LoadedModel,
    threshold: float | None = None,
    chunk_seconds: float = 10.0,
    batch_size: int = 8,
) -> tuple[Tensor, RestoreReport]:
    """Restore ``audio`` ``(channels, frames)`` at ``sample_rate``; returns the restored audio (same
    shape and rate) and a report. The clip level is detected per channel and polarity unless
    ``threshold`` is given (symmetric). Unclipped audio comes back unchanged. Reliable samples are
    kept bit-exact; clipped ones end at or beyond the level with the sign of the input."""
    if not torch.isfinite(audio).all():
        raise ConfigError("the audio has NaN or infinite samples; repair or remove them first")
    if threshold is None:
        level = detect_clip_level(audio)
        physics, clipped = Clipping(level.high, level.low), level.any
    else:
        if threshold <= 0:
            raise ConfigError(f"threshold must be positive; got {threshold}")
        physics = Clipping(torch.full((audio.shape[0], 1), float(threshold)))
        clipped = bool(physics.masks(audio).clipped.any())
    peak_in = float(audio.abs().max()) if audio.numel() else 0.0
    if not clipped:
        report = RestoreReport(False, physics.high[:, 0].tolist(), physics.low[:, 0].tolist(), 0.0, peak_in, peak_in)
        return audio.clone(), report
    y = audio if sample_rate == model.sample_rate else AF.resample(audio, sample_rate, model.sample_rate)
    if model.channels == 1:  # a mono model restores each channel on its own
        items, high, low = y[:, None], physics.high[:, None], physics.low[:, None]
    elif model.channels == y.shape[0]:
        items, high, low = y[None], physics.high[None], physics.low[None]
    else:
        raise ConfigError(f"the model restores {model.channels} channels; this audio has {y.shape[0]}")
    chunk = max(int(chunk_seconds * model.sample_rate), model.hop)
    estimate = restore_chunked(
        model.model, items, Clipping(high, low), chunk, model.context, model.hop, batch_size
    ).reshape(y.shape)
    if sample_rate != model.sample_rate:
        estimate = AF.resample(estimate, model.sample_rate, sample_rate)[:, : audio.shape[1]]
    restored = physics.project(estimate, audio)
    report = RestoreReport(
        True, physics.high[:, 0].tolist(), physics.low[:, 0].tolist(),
        float(physics.masks(audio).clipped.float().mean()), peak_in, float(restored.abs().max()),
    )  # fmt: skip
    return restored, report
