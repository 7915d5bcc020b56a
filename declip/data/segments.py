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
from declip.data.corpus import Track
from declip.data.seeding import item_generator

log = logging.getLogger(__name__)

MAX_TRIES = 20
MARGIN = 64  # samples read beyond each edge of a segment that gets resampled


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


def audible(x: Tensor, silence_db: float) -> bool:
    """Whether the mean power of ``x`` is above ``silence_db`` (dB)."""
    return bool(10 * torch.log10(x.pow(2).mean() + 1e-20) > silence_db)


def gain_and_clip(
    x: Tensor,
    levels: ClipLevels,
    gain_db_range: tuple[float, float],
    clean_targets: bool,
    index: int,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """A training item from a clean segment: a random gain in ``gain_db_range`` (dB), then clipping at
    a level drawn by ``levels``; the clean ``x`` is kept only with ``clean_targets``."""
    low, high = gain_db_range
    gain_db = low + (high - low) * float(torch.rand(1, generator=generator))
    item = levels.clip(x * 10 ** (gain_db / 20), index, generator)
    if not clean_targets:
        del item["x"]
    return item


class ClippedSegments(Dataset):
    """Segments of ``length`` samples at ``sample_rate``, clipped by ``levels``.

    ``fixed=False`` (training): item ``i`` is draw ``i``, a random track (weighted by duration) and
    offset drawn from ``(seed, i)``; with ``remix``, each stem comes from its own random track and
    offset. Any ``i >= 0`` is an item: :class:`~declip.data.resumable.EpochSampler` gives each epoch
    new draw numbers, so epochs draw new segments, the same in every run.
    ``fixed=True`` (evaluation): items come in blocks of one segment clipped at each of the fixed
    levels; block ``b`` reads track ``b % len(tracks)`` at an offset drawn from ``(seed, b)``: the
    same segments in every run, worker and DDP rank. A track's mixture is its
    ``"mixture"`` stem, or the sum of its stems. Near-silent segments are redrawn; files that fail to
    decode are skipped with a warning. Items are dicts like those of
    :class:`~declip.data.SyntheticClipping`; ``clean_targets=False`` drops ``x``.
    """

    def __init__(
        self,
        tracks: list[Track],
        length: int,
        sample_rate: int,
        channels: int,
        levels: ClipLevels,
        items: int,
        seed: int,
        fixed: bool,
        stream: str = "train",
        remix: bool = False,
        remix_stems: list[str] | None = None,
        gain_db_range: tuple[float, float] = (0.0, 0.0),
        silence_db: float = -50.0,
        clean_targets: bool = True,
    ) -> None:
        if not tracks:
            raise ValueError("ClippedSegments needs at least one track")
        self.tracks, self.length, self.sample_rate, self.channels = tracks, length, sample_rate, channels
        self.levels, self.items, self.seed, self.fixed, self.stream = levels, items, seed, fixed, stream
        self.remix, self.remix_stems = remix, remix_stems
        self.gain_db_range, self.silence_db, self.clean_targets = gain_db_range, silence_db, clean_targets
        self.weights = torch.tensor([t.seconds for t in tracks], dtype=torch.float64)

    def __len__(self) -> int:
        return self.items

    def _read(self, stems: list[AudioInfo], generator: torch.Generator) -> Tensor:
        """The sum of ``stems`` (one rate) from one random offset, at the model's rate and channels.

        When resampling, ``MARGIN`` extra samples are read on each side and cut afterwards, so the
        resampling filter has real context at both edges of the segment."""
        rate = stems[0].sample_rate
        frames = math.ceil(self.length * rate / self.sample_rate)
        total = min(info.frames for info in stems)
        start = int(torch.randint(0, max(total - frames, 0) + 1, (1,), generator=generator))
        before = min(start, MARGIN) if rate != self.sample_rate else 0
        after = MARGIN if rate != self.sample_rate else 0
        x = sum(
            _match_channels(read_segment(info, start - before, before + frames + after), self.channels)
            for info in stems
        )
        if rate != self.sample_rate:
            x = AF.resample(x, rate, self.sample_rate)[:, round(before * self.sample_rate / rate) :]
        x = x[:, : self.length]
        return torch.nn.functional.pad(x, (0, self.length - x.shape[1]))

    def _pick(self, generator: torch.Generator, weights: Tensor | None = None) -> Track:
        return self.tracks[int(torch.multinomial(self.weights if weights is None else weights, 1, generator=generator))]

    def _clean(self, index: int, attempt: int, generator: torch.Generator) -> Tensor:
        if self.fixed:
            levels = len(self.levels.fixed_sdrs or [None])
            track = self.tracks[(index // levels + attempt) % len(self.tracks)]
        else:
            track = self._pick(generator)
        if not self.remix:
            stems = [track.stems["mixture"]] if "mixture" in track.stems else list(track.stems.values())
            return self._read(stems, generator)
        out = torch.zeros(self.channels, self.length)
        for stem in self.remix_stems or sorted(set(track.stems) - {"mixture"}):
            having = self.weights * torch.tensor([stem in t.stems for t in self.tracks], dtype=torch.float64)
            out = out + self._read([self._pick(generator, having).stems[stem]], generator)
        return out

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        # evaluation: consecutive items share one segment, clipped at each level in turn
        key = index // len(self.levels.fixed_sdrs or [None]) if self.fixed else index
        generator = item_generator(self.seed, self.stream, key)
        for attempt in range(MAX_TRIES):
            try:
                x = self._clean(index, attempt, generator)
            except (RuntimeError, OSError) as error:
                log.warning("item %d: skipping a segment that failed to decode (%s)", index, error)
                continue
            if audible(x, self.silence_db):
                break
        else:
            raise RuntimeError(f"no audible segment found in {MAX_TRIES} tries (item {index}); is the corpus silent?")
        return gain_and_clip(x, self.levels, self.gain_db_range, self.clean_targets, index, generator)
