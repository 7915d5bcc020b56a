"""``restore()``: declip a recording with a trained model; the function behind ``declip restore``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor

from declip.errors import ConfigError
from declip.inference.chunks import receptive_field, restore_chunked
from declip.inference.detect import detect_clip_level
from declip.models import Declipper
from declip.physics import Clipping

SUBTYPES = ("FLOAT", "PCM_24", "PCM_16")


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
        except Exception as error:  # torch.load and Lightning raise many kinds for a foreign or broken file
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
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Tensor, RestoreReport]:
    """Restore ``audio`` ``(channels, frames)`` at ``sample_rate``; returns the restored audio (same
    shape and rate) and a report. The clip level is detected per channel and polarity unless
    ``threshold`` is given (symmetric). Unclipped audio comes back unchanged. Reliable samples are
    kept bit-exact; clipped ones end at or beyond the level with the sign of the input."""
    audio = audio.float()
    if not torch.isfinite(audio).all():
        raise ConfigError("the audio has NaN or infinite samples; repair or remove them first")
    if threshold is None:
        level = detect_clip_level(audio)
        physics, clipped = Clipping(level.high, level.low), level.any
    else:
        if threshold <= 0:
            raise ConfigError(f"threshold must be positive; got {threshold}")
        # samples within 1e-5 of the level count as at it: integer formats store 0.3 as 0.29999...
        level = float(threshold) * (1 - 1e-5)
        physics = Clipping(torch.full((audio.shape[0], 1), level))
        clipped = bool(physics.masks(audio).clipped.any())
    peak_in = float(audio.abs().max()) if audio.numel() else 0.0
    if not clipped:
        report = RestoreReport(False, physics.high[:, 0].tolist(), physics.low[:, 0].tolist(), 0.0, peak_in, peak_in)
        return audio.clone(), report
    y = audio
    if sample_rate != model.sample_rate:  # clamp again: resampling ripples the plateaus
        y = physics(AF.resample(audio, sample_rate, model.sample_rate))
    if model.channels == 1:  # a mono model restores each channel on its own
        items, high, low = y[:, None], physics.high[:, None], physics.low[:, None]
    elif model.channels == y.shape[0]:
        items, high, low = y[None], physics.high[None], physics.low[None]
    else:
        raise ConfigError(f"the model restores {model.channels} channels; this audio has {y.shape[0]}")
    chunk = max(int(chunk_seconds * model.sample_rate), model.hop)
    estimate = restore_chunked(
        model.model, items, Clipping(high, low), chunk, model.context, model.hop, batch_size, progress
    ).reshape(y.shape)
    if sample_rate != model.sample_rate:
        estimate = AF.resample(estimate, model.sample_rate, sample_rate)[:, : audio.shape[1]]
    restored = physics.project(estimate.cpu(), audio)
    report = RestoreReport(
        True, physics.high[:, 0].tolist(), physics.low[:, 0].tolist(),
        float(physics.masks(audio).clipped.float().mean()), peak_in, float(restored.abs().max()),
    )  # fmt: skip
    return restored, report


def restore_file(
    file: str | Path,
    target: str | Path,
    model: LoadedModel,
    threshold: float | None = None,
    chunk_seconds: float = 10.0,
    batch_size: int = 8,
    subtype: str = "FLOAT",
    normalize: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Restore the audio file ``file`` into the WAV file ``target``; returns a one-line account.

    Never writes over ``file`` or, without ``overwrite``, over an existing ``target``; writes a
    temporary file and renames it. ``subtype`` ``PCM_16``/``PCM_24`` with restored peaks above full
    scale needs ``normalize`` (scale down, reported). Raises ``ConfigError`` on bad input."""
    file, target = Path(file), Path(target)
    if subtype not in SUBTYPES:
        raise ConfigError(f"subtype must be one of {SUBTYPES}; got {subtype!r}")
    if target.resolve() == file.resolve():
        raise ConfigError("the output would overwrite the input; choose another output path")
    if target.suffix.lower() != ".wav":
        raise ConfigError(f"{target}: outputs are WAV files; name it with .wav")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --overwrite to replace it")
    try:
        audio, rate = sf.read(file, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise ConfigError(f"unreadable audio ({error})") from error
    if audio.shape[0] == 0:
        raise ConfigError("the file holds no samples")
    restored, report = restore_array(
        torch.from_numpy(audio.T.copy()), rate, model, threshold, chunk_seconds, batch_size, progress
    )
    out = restored.T.numpy()
    note = "" if report.clipped else "nothing clipped: copied unchanged; "
    peak = float(np.abs(out).max())
    if subtype != "FLOAT" and peak > 1.0:
        if not normalize:
            raise ConfigError(
                f"restored peaks reach {peak:.3f}, above full scale for {subtype}: "
                "keep --subtype FLOAT (the default) or add --normalize"
            )
        out = out * (0.999 / peak)
        note += f"scaled by {20 * np.log10(0.999 / peak):.2f} dB to fit {subtype}; "
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp, out, rate, subtype=subtype, format="WAV")
        os.replace(tmp, target)
    except (OSError, sf.LibsndfileError) as error:
        raise ConfigError(f"cannot write {target} ({error})") from error
    finally:
        tmp.unlink(missing_ok=True)
    levels = ", ".join(f"+{h:.4f}/{lo:.4f}" for h, lo in zip(report.high, report.low))
    share = 100 * report.clipped_fraction
    return f"{note}clip levels {levels}, {share:.2f} % clipped, peak {report.peak_in:.3f} -> {peak:.3f}"


def restore(
    audio: str | Path | np.ndarray | Tensor,
    model: str | Path | LoadedModel,
    sample_rate: int | None = None,
    output: str | Path | None = None,
    threshold: float | None = None,
    **options,
):
    """Restore clipped audio: the function behind ``declip restore``.

    - ``audio`` an array ``(frames, channels)`` (or a tensor ``(channels, frames)``) with
      ``sample_rate``: returns the restored array (or tensor) of the same shape.
    - ``audio`` a file path and ``output`` a path: writes the restored WAV and returns the account
      line (``options``: ``chunk_seconds``, ``batch_size``, ``subtype``, ``normalize``, ``overwrite``).

    ``model`` is a loaded model or a checkpoint path; ``threshold`` ``None`` detects the clip level.
    """
    if not isinstance(model, LoadedModel):
        model = LoadedModel.from_checkpoint(model)
    if isinstance(audio, (str, Path)):
        if output is None:
            raise ConfigError("restoring a file needs an output path")
        return restore_file(audio, output, model, threshold, **options)
    if sample_rate is None:
        raise ConfigError("restoring an array needs its sample_rate")
    if isinstance(audio, np.ndarray):
        tensor = torch.from_numpy(np.atleast_2d(audio.T).astype(np.float32))
        restored, _ = restore_array(tensor, sample_rate, model, threshold, **options)
        return restored.numpy().T.reshape(audio.shape)
    restored, _ = restore_array(audio, sample_rate, model, threshold, **options)
    return restored
