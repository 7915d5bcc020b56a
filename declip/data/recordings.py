"""Already-clipped recordings as training data: no clean target, clip levels found in the signal.

This is what self-supervised adaptation trains on (``declip adapt``, ``declip restore --adapt``):
segments of the user's own clipped files, each with the clip level :func:`detect_clip_level`
finds in its file, channel and polarity. Files or channels without clipping still teach the
reliable-sample part of the measurement-consistency loss.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor
from torch.utils.data import Dataset

from declip.data.audio_files import LOSSY_EXTENSIONS, AudioInfo, AudioSource, find_inputs, probe
from declip.data.segments import read_segment
from declip.detection.plateaus import ClipLevel, detect_clip_level_blocks
from declip.errors import ConfigError
from declip.physics import Clipping

log = logging.getLogger(__name__)

BLOCK_FRAMES = 1 << 20


@dataclass(frozen=True)
class Recording:
    """A clipped recording: where it is and its clip levels ``(channels, 1)`` per polarity."""

    info: AudioInfo
    high: Tensor
    low: Tensor
    clipped: Tensor  # (channels,) bool: any clipping in the channel
    level: ClipLevel | None = None  # the plateaus detected in the file (restoring it needs them again)

    @property
    def name(self) -> str:
        return self.info.source.name


def _blocks(source: AudioSource):
    def read():
        with source.open() as f:
            for data in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                block = torch.from_numpy(data.T.copy())
                if not torch.isfinite(block).all():
                    raise ValueError("NaN or infinite samples")
                yield block

    return read


def scan_recordings(
    paths: list[str | Path], threshold: float | None = None
) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Every readable audio file under ``paths`` with its detected clip levels (or ``threshold``,
    symmetric, for every file and channel), and the failures ``(name, reason)`` (unreadable,
    empty, NaN samples): those are skipped, not fatal."""
    found, failures = find_inputs(paths)
    recordings = []
    for source, _ in found:
        try:
            info = probe(source)
            if info is None:
                raise ValueError("not readable as audio, or empty")
            level = detect_clip_level_blocks(_blocks(source))
        except (ValueError, RuntimeError, OSError, sf.LibsndfileError) as error:
            failures.append((source.name, f"unreadable audio ({error})"))
            continue
        if threshold is not None:  # the user's level; within LEVEL_TOLERANCE of it counts as at it
            high = Clipping.at_level(threshold, info.channels).high
            clipped = (level.high[:, 0] >= high[:, 0]) | (-level.low[:, 0] >= high[:, 0])
            recordings.append(Recording(info, high, -high, clipped, level))
            continue
        clipped = level.clipped_high | level.clipped_low
        recordings.append(Recording(info, level.high, level.low, clipped, level))
    return recordings, failures


PLATEAUS_ONLY = "adaptation learns from plateaus, which lossy coding smears"
"""Why an MP3 or Ogg file clipped before coding gives adaptation nothing (restoring it still finds that clipping)."""


def require_clipping(recordings: list[Recording], failures: list[tuple[str, str]]) -> None:
    """Refuse data with nothing to learn from: no readable file, or no clipped sample anywhere."""
    if not recordings:
        reasons = "; ".join(f"{name}: {why}" for name, why in failures[:3]) or "no audio files given"
        raise ConfigError(f"no readable clipped recording to adapt on ({reasons})")
    if not any(bool(r.clipped.any()) for r in recordings):
        lossy = any(r.name.lower().endswith(LOSSY_EXTENSIONS) for r in recordings)
        coded = f"; {PLATEAUS_ONLY}: declip restore finds it without adapting" if lossy else ""
        raise ConfigError(
            f"no clipped samples in any of the {len(recordings)} file(s) (no plateau at a clip level was found"
            f"{coded}): there is nothing to adapt to"
        )


class ClippedRecordings(Dataset):
    """Random segments of ``length`` samples at ``sample_rate`` from clipped ``recordings``.

    Items are ``{"y", "high", "low"}`` (no ``x``): a recording drawn with probability proportional
    to its duration, times two for those with clipping; a random offset; for a mono model
    (``channels=1``) one random channel of the file, else the file's channels (which must match).
    Other rates are resampled and clamped again at the file's clip levels (resampling ripples the
    plateaus). Item ``i`` is reproducible from ``(seed, i)``.
    """

    def __init__(
        self, recordings: list[Recording], length: int, sample_rate: int, channels: int, items: int, seed: int = 0
    ) -> None:
        if not recordings:
            raise ConfigError("ClippedRecordings needs at least one recording")
        for r in recordings:
            if channels != 1 and r.info.channels != channels:
                raise ConfigError(
                    f"{r.name}: {r.info.channels} channel(s), but the model takes {channels}; use a mono model"
                )
        self.recordings, self.length, self.sample_rate, self.channels = recordings, length, sample_rate, channels
        self.items, self.seed = items, seed
        weights = [r.info.seconds * (2.0 if bool(r.clipped.any()) else 1.0) for r in recordings]
        self.weights = torch.tensor(weights, dtype=torch.float64)

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        recording = self.recordings[int(torch.multinomial(self.weights, 1, generator=generator))]
        info = recording.info
        rate = info.sample_rate
        margin = 64 if rate != self.sample_rate else 0
        frames = math.ceil(self.length * rate / self.sample_rate) + 2 * margin
        start = int(torch.randint(0, max(info.frames - frames, 0) + 1, (1,), generator=generator))
        y = read_segment(info, start, frames)
        high, low = recording.high, recording.low
        if self.channels == 1 and info.channels > 1:
            channel = int(torch.randint(0, info.channels, (1,), generator=generator))
            y, high, low = y[channel : channel + 1], high[channel : channel + 1], low[channel : channel + 1]
        if rate != self.sample_rate:
            y = AF.resample(y, rate, self.sample_rate)[:, round(margin * self.sample_rate / rate) :]
        y = torch.nn.functional.pad(y[:, : self.length], (0, max(self.length - y.shape[1], 0)))
        y = torch.minimum(torch.maximum(y, low), high)
        return {"y": y, "high": high.clone(), "low": low.clone()}
