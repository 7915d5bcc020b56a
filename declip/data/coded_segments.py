"""Clip, then code: clipped segments passed through a real lossy encoder, measured under a tolerance band.

A codec smears the plateaus of a clipped signal: clipped samples scatter around the encoder's gain
times θ, some above and some below it, so consistency cannot pin them to the measurement. The
measurement model is the tolerance band that restoration used on a coded file before its learned
masks (:mod:`declip.detection.coded_mask`): with ``e = (1 - δ) g θ`` (``g`` the encoder's gain,
:data:`~declip.data.codecs.ENCODER_GAINS`; ``δ`` the band's relative width), samples at or beyond
``±e`` count as clipped and the network sees the coded segment clipped at ``±e``. The item's ``y``
is that input and its thresholds are ``±e``, so a self-supervised loss (:class:`ReclipLoss`) finds
exact targets only where the coded segment is inside the band's edge and asks only "beyond ``e``"
of the rest.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor
from torch.utils.data import Dataset

from declip.data.codecs import CODECS, ENCODER_GAINS, code
from declip.data.seeding import item_generator
from declip.errors import ConfigError

MARGIN = 4096  # samples coded beyond each edge of a segment and cut afterwards (the encoder's edges)


class CodedClipping:
    """Code a clipped item ``(channels, time)`` with one of ``codecs`` (``{"mp3": 128, "opus": 96}``:
    codec to kbps, one drawn per item) and measure it under a band of relative width drawn uniformly
    in ``band_range``; ``margin`` samples are cut from each edge after decoding."""

    def __init__(
        self, codecs: Mapping[str, float], band_range: tuple[float, float] = (0.01, 0.1), margin: int = MARGIN
    ) -> None:
        if not codecs or any(c not in CODECS for c in codecs):
            raise ConfigError(f"codecs must map some of {CODECS} to a bit rate (kbps); got {dict(codecs)}")
        if len(band_range) != 2 or not 0 <= band_range[0] <= band_range[1] < 1:
            raise ConfigError(f"codec_band must be [low, high] with 0 <= low <= high < 1; got {list(band_range)}")
        self.codecs = {name: float(kbps) for name, kbps in codecs.items()}
        self.band_range, self.margin = tuple(band_range), margin

    def apply(self, item: dict[str, Tensor], sample_rate: int, generator: torch.Generator) -> dict[str, Tensor]:
        """The coded item: ``y`` clipped at the band's edge, ``high``/``low`` the edge, ``x`` (if
        present) the clean signal times the encoder's gain; ``(channels, time - 2 * margin)``."""
        names = list(self.codecs)
        pick = int(torch.randint(len(names), (1,), generator=generator))
        low, high = self.band_range
        band = low + (high - low) * float(torch.rand(1, generator=generator))
        codec, cut = names[pick], slice(self.margin, item["y"].shape[-1] - self.margin)
        coded = code(item["y"].T.numpy(), sample_rate, codec, self.codecs[codec])
        edge = (1 - band) * ENCODER_GAINS[codec]
        high_edge, low_edge = item["high"] * edge, item["low"] * edge
        out = dict(item)
        out["y"] = torch.clamp(torch.from_numpy(coded.T)[:, cut], low_edge, high_edge)
        out["high"], out["low"] = high_edge, low_edge
        if "x" in item:
            out["x"] = item["x"][:, cut] * ENCODER_GAINS[codec]
        return out


class CodedSegments(Dataset):
    """Items of ``segments`` (each ``2 * coding.margin`` samples longer than wanted) clipped, then
    coded and measured by ``coding``; the codec and band of item ``i`` are drawn from
    ``(seed, stream, i)``, so they repeat in every run and worker."""

    def __init__(self, segments: Dataset, coding: CodedClipping, sample_rate: int, seed: int, stream: str) -> None:
        self.segments, self.coding, self.sample_rate = segments, coding, sample_rate
        self.seed, self.stream = seed, stream

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        generator = item_generator(self.seed, f"{self.stream}/codec", index)
        return self.coding.apply(self.segments[index], self.sample_rate, generator)
