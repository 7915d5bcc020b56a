"""What a recording's clipping looks like, per channel: the numbers behind ``declip analyze``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from declip.data import ffmpeg
from declip.detection.coded import DESCRIPTIONS
from declip.detection.measurement import Measurement, measure
from declip.detection.plateaus import detect_clip_level
from declip.errors import ConfigError
from declip.physics import Clipping


@dataclass(frozen=True)
class ChannelAnalysis:
    """One channel: its kind and confidence, clip levels (``high`` > 0 > ``low``; for an unclipped
    polarity, just past its peak), the share of samples counted clipped and the longest run of them."""

    channel: int
    kind: str
    description: str
    confidence: float
    high: float
    low: float
    clipped_share: float
    longest_run: int


@dataclass(frozen=True)
class FileAnalysis:
    path: str
    sample_rate: int
    frames: int
    channels: list[ChannelAnalysis]
    worst_second: float  # start (s) of the second with the most clipped samples
    moving_baseline: bool = False  # the levels hold once a slow baseline is taken out (declip.detection.baseline)

    def as_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        moving = "; levels on a moving baseline, taken out before measuring" if self.moving_baseline else ""
        out = [f"{self.path}: {self.frames / self.sample_rate:.1f} s at {self.sample_rate} Hz{moving}"]
        for c in self.channels:
            out.append(
                f"  channel {c.channel}: {c.kind} ({c.description}), confidence {c.confidence:.2f}, "
                f"levels +{c.high:.4f}/{c.low:.4f}, {100 * c.clipped_share:.2f} % clipped, "
                f"longest run {c.longest_run} samples"
            )
        return out


def read_audio(path: str | Path) -> tuple[Tensor, int]:
    """``(channels, frames)`` float32 samples and the rate (formats libsndfile cannot open, such as AAC,
    through FFmpeg); one-line ``ConfigError`` on bad input."""
    if ffmpeg.only_ffmpeg_reads(path):
        data, rate = ffmpeg.decode(path)
    else:
        try:
            data, rate = sf.read(path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:  # opened, then broke off
            raise ConfigError(f"unreadable audio ({error})") from error
    if data.shape[0] == 0:
        raise ConfigError("the file holds no samples")
    audio = torch.from_numpy(data.T.copy())
    if not torch.isfinite(audio).all():
        raise ConfigError("the audio has NaN or infinite samples; repair or remove them first")
    return audio, rate


def measure_array(audio: Tensor, sample_rate: int, sensitivity: float = 1.0) -> Measurement:
    """The measurement ``declip restore`` would use for ``audio`` ``(channels, frames)``, without a level given."""
    level = detect_clip_level(audio)
    physics = Clipping(level.high, level.low)
    found = measure(physics, level.any, audio.shape[0], lambda: [audio], sample_rate, sensitivity)
    if not level.any:
        return found
    kinds = tuple("hard" if h or lo else "none" for h, lo in zip(level.clipped_high, level.clipped_low))
    return Measurement(physics, True, kinds, (1.0,) * len(kinds))


def _longest_run(mask: Tensor) -> int:
    """Longest run of ``True`` in a 1-D mask."""
    padded = np.concatenate([[0], mask.numpy().astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def analyze_array(
    audio: Tensor, sample_rate: int, path: str = "", sensitivity: float = 1.0, measurement: Measurement | None = None
) -> FileAnalysis:
    """Per-channel clipping of ``audio`` ``(channels, frames)``, under ``measurement`` (:func:`measure_array` at
    ``sensitivity`` when not given)."""
    if measurement is None:
        measurement = measure_array(audio, sample_rate, sensitivity)
    clipped = measurement.physics.masks(measurement.level_view(audio)).clipped
    if measurement.clipped is False:
        clipped = torch.zeros_like(clipped)
    channels = [
        ChannelAnalysis(
            c,
            kind,
            DESCRIPTIONS[kind],
            round(float(confidence), 3),
            float(measurement.physics.high[c, 0]),
            float(measurement.physics.low[c, 0]),
            float(clipped[c].float().mean()),
            _longest_run(clipped[c]),
        )  # fmt: skip
        for c, (kind, confidence) in enumerate(zip(measurement.kinds, measurement.confidences))
    ]
    per_second = clipped.any(0).float()
    length = per_second.shape[0] // sample_rate * sample_rate
    if length:
        counts = per_second[:length].reshape(-1, sample_rate).sum(1)
        worst = float(counts.argmax()) if counts.max() > 0 else 0.0
    else:
        worst = 0.0
    return FileAnalysis(path, sample_rate, audio.shape[1], channels, worst, measurement.baseline is not None)


def analyze_file(path: str | Path, sensitivity: float = 1.0) -> tuple[FileAnalysis, Tensor, Measurement]:
    """The analysis of an audio file, its samples ``(channels, frames)`` and the measurement behind both."""
    audio, rate = read_audio(path)
    measurement = measure_array(audio, rate, sensitivity)
    return analyze_array(audio, rate, str(path), measurement=measurement), audio, measurement


def restore_measured(audio: Tensor, sample_rate: int, model, measurement: Measurement, start: int = 0) -> Tensor:
    """``audio`` ``(channels, frames)``, its first sample at ``start`` in the measured file, restored under
    ``measurement``; reliable samples kept bit-exact."""
    from declip.inference.estimate import network_estimate
    from declip.inference.restore import default_windows

    if measurement.clipped is False:
        return audio.clone()
    chunk_seconds, batch_size = default_windows("cpu")
    physics = measurement.physics
    view = measurement.level_view(audio, start)
    masks = physics.masks(view)
    network_input = measurement.input_for_network(view, masks)
    estimate = network_estimate(network_input, sample_rate, model, physics, chunk_seconds, batch_size)
    return measurement.finish(physics.project(estimate, view, masks), audio, masks, start)


def restore_excerpt(
    audio: Tensor, sample_rate: int, model, measurement: Measurement, start: float, seconds: float = 1.0
) -> tuple[Tensor, Tensor]:
    """``(clipped, restored)`` ``(channels, frames)`` of ``seconds`` from ``start`` (s), restored under
    the whole file's ``measurement`` with a second of context on each side."""
    first, stop = int(start * sample_rate), int((start + seconds) * sample_rate)
    lo, hi = max(first - sample_rate, 0), min(stop + sample_rate, audio.shape[1])
    window = audio[:, lo:hi]
    restored = restore_measured(window, sample_rate, model, measurement, lo)
    return window[:, first - lo : stop - lo], restored[:, first - lo : stop - lo]
