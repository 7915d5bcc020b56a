"""The slow baseline a codec leaves clipped plateaus on.

A codec that removes what lies below about 20 Hz (Opus does; offsets included) takes it from the
clipped signal too: the plateaus, flat at ±θ before coding, then sit on a baseline that moves by what
was removed, and each polarity's level drifts over the file. Where both polarities clip, the midpoint
of a short window's largest and smallest sample follows that baseline. :func:`estimate_baseline`
takes it, kept below 20 Hz, from one pass over a file's blocks; detection tries again on the input
without it when the input as it is shows no clipping (:func:`declip.detection.measurement.measure`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

WINDOW = 2048  # samples: the extremes' window (1024, 2048 and 4096 tried on the validation split, with an earlier
# form of this estimate that low-passed the interpolated line instead of the midpoints)
CUTOFF = 20.0  # Hz: what is kept of the midpoints


@dataclass(frozen=True, eq=False)  # an array inside: compared by identity
class SlowBaseline:
    """The baseline ``points`` ``(channels, n)`` at sample positions ``first + i * hop``, linear between
    them and constant beyond the first and the last."""

    points: np.ndarray
    first: float
    hop: int

    def at(self, start: int, length: int) -> Tensor:
        """The baseline over samples ``start .. start + length`` ``(channels, length)``, float64."""
        positions = np.arange(start, start + length, dtype=np.float64)
        centres = self.first + self.hop * np.arange(self.points.shape[-1], dtype=np.float64)
        return torch.from_numpy(np.stack([np.interp(positions, centres, p) for p in self.points]))

    def removed(self, y: Tensor, start: int = 0) -> Tensor:
        """``y`` ``(channels, frames)``, its first sample at ``start``, without the baseline."""
        return (y.double() - self.at(start, y.shape[-1]).to(y.device)).to(y.dtype)

    def put_back(self, x: Tensor, start: int = 0) -> Tensor:
        """``x``, restored from :meth:`removed`, back on the baseline."""
        return (x.double() + self.at(start, x.shape[-1]).to(x.device)).to(x.dtype)

    def removed_blocks(self, blocks: Iterable[Tensor]) -> Iterator[Tensor]:
        """Consecutive ``blocks`` of a file, each without the baseline."""
        start = 0
        for block in blocks:
            yield self.removed(block, start)
            start += block.shape[-1]


def estimate_baseline(
    blocks: Iterable[Tensor], sample_rate: int, window: int = WINDOW, cutoff: float = CUTOFF
) -> SlowBaseline:
    """The midpoint of each window's largest and smallest sample (windows of four hops, the hop
    ``window // 4`` samples), per channel, kept below ``cutoff`` Hz (the midpoints' spectrum above it set to
    zero, the whole file as one FFT, so the first and last half second or so feel each other's baseline), from
    one pass over a file's consecutive ``blocks`` ``(channels, frames)``; empty blocks are skipped."""
    if window < 4:
        raise ValueError(f"the baseline's window must be at least 4 samples; got {window}")
    hop = window // 4
    highs, lows, carry = [], [], None
    for block in blocks:
        if block.shape[-1] == 0:
            continue
        block = block.detach().cpu().double()
        if carry is not None:
            block = torch.cat([carry, block], -1)
        whole = block.shape[-1] // hop * hop
        segments = block[:, :whole].reshape(block.shape[0], -1, hop)
        highs.append(segments.amax(-1))
        lows.append(segments.amin(-1))
        carry = block[:, whole:]
    if carry is None:
        raise ValueError("no samples to estimate a baseline from")
    if carry.shape[-1]:
        highs.append(carry.amax(-1, keepdim=True))
        lows.append(carry.amin(-1, keepdim=True))
    high, low = torch.cat(highs, -1), torch.cat(lows, -1)
    span = min(4, high.shape[-1])  # segments per window
    high, low = high.unfold(-1, span, 1).amax(-1), low.unfold(-1, span, 1).amin(-1)
    middles = ((high + low) / 2).numpy()
    spectrum = np.fft.rfft(middles, axis=-1)
    spectrum[..., np.fft.rfftfreq(middles.shape[-1], hop / sample_rate) >= cutoff] = 0
    points = np.fft.irfft(spectrum, middles.shape[-1], axis=-1)
    return SlowBaseline(points, first=(span * hop - 1) / 2, hop=hop)
