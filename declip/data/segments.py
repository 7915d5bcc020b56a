"""Clipped segments streamed from audio files: each item reads only its own samples."""

from __future__ import annotations

import logging
import math

import torch
import torchaudio.functional as AF
from torch import Tensor
from torch.utils.data import Dataset

from declip.data.audio_files import AudioInfo
from declip.data.clipping import ClipLevels

log = logging.getLogger(__name__)

MAX_TRIES = 20


def read_segment(info: AudioInfo, start: int, frames: int) -> Tensor:
    """``frames`` samples from ``start`` (in the file's rate), ``(channels, frames)`` float32,
    zero-padded past the end. Seeks, so only the segment is decoded where the format allows."""
    with info.source.open() as f:
        f.seek(min(start, info.frames))
        data = f.read(frames, dtype="float32", always_2d=True)
    out = torch.zeros(info.channels, frames)
    out[:, : data.shape[0]] = torch.from_numpy(data).T
    return out


def _match_channels(x: Tensor, channels: int) -> Tensor:
    if x.shape[0] == channels:
        return x
    if channels == 1:
        return x.mean(0, keepdim=True)
    if x.shape[0] == 1:
        return x.expand(channels, -1).clone()
    return x[:channels]


class ClippedSegments(Dataset):
    """Segments of ``length`` samples at ``sample_rate``, clipped by ``levels``.

    ``fixed=False`` (training): item ``i`` is a random track (weighted by duration) and offset drawn
    from ``(seed, i)``. ``fixed=True`` (evaluation): item ``i`` reads track ``i % len(tracks)`` at an
    offset drawn from ``(seed, i)``: the same segments in every run, worker and DDP rank.
    Near-silent segments are redrawn; unreadable files are skipped with a warning. Items are dicts
    like those of :class:`~declip.data.SyntheticClipping`; ``clean_targets=False`` drops ``x``.
    """

    def __init__(
        self,
        tracks: list[AudioInfo],
        length: int,
        sample_rate: int,
        channels: int,
        levels: ClipLevels,
        items: int,
        seed: int,
        fixed: bool,
        gain_db_range: tuple[float, float] = (0.0, 0.0),
        silence_db: float = -50.0,
        clean_targets: bool = True,
    ) -> None:
        self.tracks, self.length, self.sample_rate, self.channels = tracks, length, sample_rate, channels
        self.levels, self.items, self.seed, self.fixed = levels, items, seed, fixed
        self.gain_db_range, self.silence_db, self.clean_targets = gain_db_range, silence_db, clean_targets
        self.weights = torch.tensor([t.seconds for t in tracks], dtype=torch.float64)

    def __len__(self) -> int:
        return self.items

    def _read(self, info: AudioInfo, generator: torch.Generator) -> Tensor:
        frames = math.ceil(self.length * info.sample_rate / self.sample_rate) + 16
        start = int(torch.randint(0, max(info.frames - frames, 0) + 1, (1,), generator=generator))
        x = read_segment(info, start, frames)
        if info.sample_rate != self.sample_rate:
            x = AF.resample(x, info.sample_rate, self.sample_rate)
        x = _match_channels(x, self.channels)[:, : self.length]
        return torch.nn.functional.pad(x, (0, self.length - x.shape[1]))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        for attempt in range(MAX_TRIES):
            if self.fixed:
                track = self.tracks[(index + attempt) % len(self.tracks)]
            else:
                track = self.tracks[int(torch.multinomial(self.weights, 1, generator=generator))]
            try:
                x = self._read(track, generator)
            except (RuntimeError, OSError) as error:
                log.warning("skipping %s: read failed (%s)", track.source.name, error)
                continue
            rms_db = 10 * torch.log10(x.pow(2).mean() + 1e-20)
            if rms_db > self.silence_db:
                break
        else:
            raise RuntimeError(f"no audible segment found in {MAX_TRIES} tries (item {index}); is the corpus silent?")
        low, high = self.gain_db_range
        gain_db = low + (high - low) * float(torch.rand(1, generator=generator))
        item = self.levels.clip(x * 10 ** (gain_db / 20), index, generator)
        if not self.clean_targets:
            del item["x"]
        return item
