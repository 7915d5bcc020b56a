"""The items of a streamed corpus: one clipped segment per packed piece (training) or fixed
segments read by index (evaluation), drawn as :class:`~declip.data.ClippedSegments` draws them."""

from __future__ import annotations

import torch
import torchaudio.functional as AF
from litdata import StreamingDataset
from litdata.streaming.sampler import ChunkedIndex
from torch import Tensor
from torch.utils.data import Dataset

from declip.data.object_store import allow_plain_http_endpoint
from declip.data.pieces import decode_piece
from declip.data.seeding import item_generator
from declip.data.segments import MARGIN, MAX_TRIES, _match_channels, audible, gain_and_clip


class SegmentDraw:
    """One clipped segment from one decoded piece: offset, silence redraws, gain and clip level."""

    def __init__(self, length, sample_rate, channels, levels, seed, stream, gain_db_range, clean_targets) -> None:
        self.length, self.sample_rate, self.channels, self.levels = length, sample_rate, channels, levels
        self.seed, self.stream, self.gain_db_range, self.clean_targets = seed, stream, gain_db_range, clean_targets
        self.silence_db = -50.0

    def segment(self, audio: Tensor, rate: int, generator: torch.Generator) -> Tensor:
        """A random segment of ``audio`` ``(channels, frames)`` at the model's rate and channels."""
        frames = -(-self.length * rate // self.sample_rate)
        start = int(torch.randint(0, max(audio.shape[1] - frames, 0) + 1, (1,), generator=generator))
        resample = rate != self.sample_rate
        before, after = (min(start, MARGIN), MARGIN) if resample else (0, 0)
        x = _match_channels(audio[:, start - before : start + frames + after], self.channels)
        if resample:
            x = AF.resample(x, rate, self.sample_rate)[:, round(before * self.sample_rate / rate) :]
        x = x[:, : self.length]
        return torch.nn.functional.pad(x, (0, self.length - x.shape[1]))

    def audible(self, x: Tensor) -> bool:
        return audible(x, self.silence_db)

    def clip(self, x: Tensor, index: int, generator: torch.Generator) -> dict[str, Tensor]:
        return gain_and_clip(x, self.levels, self.gain_db_range, self.clean_targets, index, generator)


class StreamedSegments(StreamingDataset):
    """Training items: piece ``i`` of the epoch gives one segment, clipped; the draw depends on
    ``(seed, epoch, i)`` only, so it is the same whatever the ranks, workers or resumption.
    A near-silent draw is redrawn from the same piece (packing left out the silent pieces);
    after ``MAX_TRIES`` the loudest draw is kept. Items carry ``piece``, the piece's index."""

    def __init__(self, draw: SegmentDraw, **kwargs) -> None:
        super().__init__(**kwargs)
        self.draw = draw

    def __getitem__(self, index):
        if not isinstance(index, ChunkedIndex):
            return super().__getitem__(index)
        allow_plain_http_endpoint()
        raw = super().__getitem__(index)
        piece = index.index
        generator = item_generator(self.draw.seed, f"{self.draw.stream}/epoch{self.current_epoch}", piece)
        audio = decode_piece(raw["flac"], raw["scale"])
        best = None
        for _ in range(MAX_TRIES):
            x = self.draw.segment(audio, raw["rate"], generator)
            if best is None or x.pow(2).mean() > best.pow(2).mean():
                best = x
            if self.draw.audible(x):
                break
        item = self.draw.clip(best, piece, generator)
        item["piece"] = torch.tensor(piece)
        return item


class FixedStreamedSegments(Dataset):
    """Evaluation items, in blocks of one segment clipped at each fixed level: block ``b`` reads a
    piece spread evenly over the split at an offset drawn from ``(seed, b)``, the same in every run.
    A silent draw moves to the next piece."""

    def __init__(self, source: dict, draw: SegmentDraw, items: int) -> None:
        self.source, self.draw, self.items = source, draw, items
        self.pieces: StreamingDataset | None = None
        self.blocks = -(-items // len(draw.levels.fixed_sdrs or [None]))

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self.pieces is None:
            allow_plain_http_endpoint()
            self.pieces = StreamingDataset(**self.source)
        block = index // len(self.draw.levels.fixed_sdrs or [None])
        generator = item_generator(self.draw.seed, self.draw.stream, block)
        count = len(self.pieces)
        first = block * count // self.blocks if self.blocks <= count else block % count
        for attempt in range(MAX_TRIES):
            raw = self.pieces[(first + attempt) % count]
            x = self.draw.segment(decode_piece(raw["flac"], raw["scale"]), raw["rate"], generator)
            if self.draw.audible(x):
                break
        else:
            raise RuntimeError(f"no audible segment found in {MAX_TRIES} pieces (item {index}); is the corpus silent?")
        item = self.draw.clip(x, index, generator)
        item["piece"] = torch.tensor((first + attempt) % count)
        return item
