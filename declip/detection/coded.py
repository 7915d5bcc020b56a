"""Clip levels of recordings whose plateaus a codec, a resampler or a gain stage has smeared.

Plateau detection (:mod:`declip.detection.plateaus`) needs runs of samples at the extreme value.
After lossy coding the clipped tops ripple around the level (an MP3 decoder lifts some 5-10 %
above it), so nothing sits at the extreme. What survives is the amplitude distribution: the
samples that were clipped pile up in a narrow band around the level, where clean music thins out
smoothly towards its peak. Per channel and polarity this module histograms ``log |y|`` (one pass
over blocks), looks for that pile-up, and reports a level, a kind and a confidence:

- ``hard-coded``: a pile-up with samples on both sides of it (codec noise around a flat top);
- ``soft``: no pile-up, but the top of the distribution is compressed (tanh or arctan
  saturation, a brick-wall limiter): the upper quantiles crowd together;
- ``none``: neither.

Thresholds were set on the music corpus's training split (clean and clipped, coded with MP3
and Opus); ``sensitivity`` > 1 flags weaker evidence, < 1 asks for more.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

BINS_PER_OCTAVE = 700  # log-amplitude bins: 0.1 % wide
LOWEST = 2.0**-20  # amplitudes below this are not histogrammed (digital silence, dither)
OCTAVES = 22  # up to 4.0 (float files may exceed full scale)
PILE_HALF_WIDTH = 0.015  # the band around a candidate level, relative
BELOW = (0.07, 0.03)  # the reference band below it: from 7 % to 3 % under the level
PILE_RATIO = 1.5  # density in the band over the density below it, to call a pile-up
PILE_Z = 8.0  # and its excess in Poisson standard deviations
PILE_MIN_SHARE = 2e-4  # and at least this share of the polarity's samples in the band
TAIL_INDEX_MAX = 0.35  # (q99.99 - q99.9) / (q99.9 - q99) at or below this: a compressed (saturated) top
TAIL_MIN_SAMPLES = 20000  # fewer samples of a polarity: too few for the 99.99th percentile
LOWEST_CANDIDATE = 0.1  # levels are looked for above this quantile of the amplitudes
MODE_SEARCH = 0.12  # the pile-up's centre lies within 12 % of where its ratio peaks
BAND = (0.01, 0.10)  # the tolerance band under a coded level: at least 1 %, at most 10 %

KINDS = ("hard", "hard-coded", "soft", "none")
DESCRIPTIONS = {
    "hard": "hard-clipped",
    "hard-coded": "hard-clipped, then lossy-coded or filtered",
    "soft": "saturated, not hard-clipped",
    "none": "nothing clipped",
}


@dataclass(frozen=True)
class PolarityEstimate:
    """One channel's one polarity: ``level`` (a magnitude: the centre of the pile-up, or the peak),
    ``band`` (samples at or beyond it count as clipped: the lower edge of the pile-up), ``kind``,
    ``confidence`` in [0, 1] (of the kind stated), the pile-up ``ratio`` and the ``tail_index``."""

    level: float
    band: float
    kind: str
    confidence: float
    ratio: float
    tail_index: float
    peak: float


@dataclass(frozen=True)
class CodedClipLevel:
    """Per channel, the estimates of the positive (``high``) and negative (``low``) polarities."""

    high: list[PolarityEstimate]
    low: list[PolarityEstimate]

    def kind(self, channel: int) -> str:
        kinds = {self.high[channel].kind, self.low[channel].kind}
        return next(k for k in KINDS if k in kinds)

    def confidence(self, channel: int) -> float:
        kind = self.kind(channel)
        found = [p.confidence for p in (self.high[channel], self.low[channel]) if p.kind == kind]
        return max(found) if kind != "none" else min(found)

    @property
    def any_hard(self) -> bool:
        return any(p.kind == "hard-coded" for p in self.high + self.low)

    def thresholds(self) -> tuple[Tensor, Tensor]:
        """``(high, low)`` thresholds ``(channels, 1)`` for :class:`declip.Clipping`: the band's
        edge where a polarity is hard-clipped, else just past the peak (nothing clipped there)."""

        def edge(p: PolarityEstimate, other: PolarityEstimate) -> float:
            if p.kind == "hard-coded":
                return p.band
            return max(p.peak, other.peak if other.kind != "hard-coded" else other.band, 1e-9) * (1 + 1e-3) + 1e-9

        high = [edge(h, lo) for h, lo in zip(self.high, self.low)]
        low = [-edge(lo, h) for h, lo in zip(self.high, self.low)]
        return torch.tensor(high)[:, None], torch.tensor(low)[:, None]


class AmplitudeHistogram:
    """Counts of ``log2 |y|`` per channel and polarity, accumulated block by block ``(channels, time)``."""

    def __init__(self, channels: int) -> None:
        self.counts = np.zeros((channels, 2, BINS_PER_OCTAVE * OCTAVES + 1), dtype=np.int64)
        self.peaks = np.zeros((channels, 2))

    def add(self, block: Tensor) -> None:
        v = block.detach().to("cpu", torch.float64)
        for polarity, signal in enumerate((v, -v)):
            self.peaks[:, polarity] = np.maximum(self.peaks[:, polarity], signal.amax(-1).clamp(min=0).numpy())
            index = ((torch.log2(signal.clamp(min=LOWEST)) - math.log2(LOWEST)) * BINS_PER_OCTAVE).long()
            index = index.clamp(0, self.counts.shape[-1] - 1)
            index = torch.where(signal > LOWEST, index, 0)  # bin 0: silence and the other polarity
            for c in range(v.shape[0]):
                self.counts[c, polarity] += np.bincount(index[c].numpy(), minlength=self.counts.shape[-1])

    def estimate(self, sensitivity: float = 1.0) -> CodedClipLevel:
        if sensitivity <= 0:
            raise ValueError(f"sensitivity must be positive; got {sensitivity}")
        out = [
            [
                _estimate_polarity(self.counts[c, p], float(self.peaks[c, p]), sensitivity)
                for c in range(len(self.counts))
            ]
            for p in (0, 1)
        ]
        return CodedClipLevel(high=out[0], low=out[1])


def estimate_clip_level(y: Tensor, sensitivity: float = 1.0) -> CodedClipLevel:
    """Levels, kinds and confidences of ``y`` ``(channels, time)`` from its amplitude distribution."""
    return estimate_clip_level_blocks([y], y.shape[0], sensitivity)


def estimate_clip_level_blocks(blocks: Iterable[Tensor], channels: int, sensitivity: float = 1.0) -> CodedClipLevel:
    """:func:`estimate_clip_level` over consecutive blocks ``(channels, time)`` (one pass)."""
    histogram = AmplitudeHistogram(channels)
    for block in blocks:
        histogram.add(block)
    return histogram.estimate(sensitivity)


def _amplitude(index: np.ndarray | float) -> np.ndarray | float:
    return LOWEST * 2.0 ** (np.asarray(index) / BINS_PER_OCTAVE + 0.5 / BINS_PER_OCTAVE)


def _bins(relative: float) -> int:
    return max(1, round(math.log2(1 + relative) * BINS_PER_OCTAVE))


def _tail_index(counts: np.ndarray) -> float:
    """``(q99.99 - q99.9) / (q99.9 - q99)`` of the polarity's amplitudes: about 0.6-1 for music
    (0.82 for a Gaussian, 1 for a Laplacian), near 0 when the top is squashed."""
    total = counts[1:].sum()
    if total < TAIL_MIN_SAMPLES:
        return float("nan")
    cumulative = np.cumsum(counts[1:])
    q = [_amplitude(np.searchsorted(cumulative, p * total) + 1) for p in (0.99, 0.999, 0.9999)]
    return float((q[2] - q[1]) / max(q[1] - q[0], 1e-12))


def _estimate_polarity(counts: np.ndarray, peak: float, sensitivity: float) -> PolarityEstimate:
    total = int(counts[1:].sum())
    tail = _tail_index(counts)
    none = PolarityEstimate(peak, peak, "none", 1.0, 0.0, tail, peak)
    if total == 0 or peak <= 0:
        return none
    half, lo, hi = _bins(PILE_HALF_WIDTH), _bins(BELOW[0]), _bins(BELOW[1])
    window = np.convolve(counts.astype(np.float64), np.ones(2 * half + 1), "same")  # band mass at each centre
    below = np.convolve(counts.astype(np.float64), np.ones(lo - hi + 1), "full")[: len(counts)]  # mass of [i-lo+hi, i]
    reference = np.zeros_like(window)
    reference[hi:] = below[:-hi] * (2 * half + 1) / (lo - hi + 1)  # mass of [i-lo, i-hi], scaled to the band's width
    floor = int(np.searchsorted(np.cumsum(counts[1:]), LOWEST_CANDIDATE * total)) + 1
    top = int(np.nonzero(counts)[0].max())
    candidates = np.arange(max(floor, lo), top + 1)
    ratio = window[candidates] / np.maximum(reference[candidates], 1.0)
    z = (window[candidates] - reference[candidates]) / np.sqrt(reference[candidates] + 1.0)
    enough = (window[candidates] >= PILE_MIN_SHARE * total) & (z >= PILE_Z / sensitivity)
    ratio = np.where(enough, ratio, 0.0)
    needed = 1 + (PILE_RATIO - 1) / sensitivity
    pile_score = (ratio.max() - 1) / (needed - 1) if len(ratio) else 0.0
    tail_score = (1 - tail / 1.0) / (1 - TAIL_INDEX_MAX * sensitivity) if math.isfinite(tail) else 0.0
    if len(ratio) and ratio.max() >= needed:
        best = _mode_near(window, int(candidates[int(np.argmax(ratio))]), top)
        level = _vertex(counts, best)
        above = counts[best + half + 1 :].sum()
        if above < 0.02 * window[best] and peak < level * (1 + 2 * PILE_HALF_WIDTH):  # nothing beyond: a ceiling
            return PolarityEstimate(peak, peak, "soft", _confidence(pile_score), float(ratio.max()), tail, peak)
        band = _band_edge(counts, best, reference[best] / (2 * half + 1), level)
        confidence = _confidence(pile_score)
        return PolarityEstimate(level, band, "hard-coded", confidence, float(ratio.max()), tail, peak)
    if math.isfinite(tail) and tail <= TAIL_INDEX_MAX * sensitivity:
        return PolarityEstimate(peak, peak, "soft", _confidence(tail_score), float(ratio.max(initial=0)), tail, peak)
    doubt = max(pile_score, tail_score, 0.0)
    return PolarityEstimate(
        peak, peak, "none", float(np.clip(1 - doubt, 0, 1)), float(ratio.max(initial=0)), tail, peak
    )


def _mode_near(window: np.ndarray, index: int, top: int) -> int:
    """The pile-up's centre: the densest band within :data:`MODE_SEARCH` of the strongest ratio
    (which sits on the pile-up's lower flank, where the density below is still thin)."""
    reach = _bins(MODE_SEARCH)
    lo, hi = max(index - reach, 0), min(index + reach, top) + 1
    return lo + int(np.argmax(window[lo:hi]))


def _vertex(counts: np.ndarray, mode: int) -> float:
    """The level: the vertex of a parabola fitted to the log of the smoothed density from 2 % under
    the mode to 5 % over it (codec noise spreads a plateau into a bell; the vertex is its centre at a
    finer step than the bins), or the mode's amplitude when the fit is not a peak."""
    width = 2 * _bins(0.004) + 1
    smooth = np.convolve(counts.astype(np.float64), np.ones(width) / width, "same")
    span = np.arange(max(mode - _bins(0.02), 0), min(mode + _bins(0.05), len(counts) - 1) + 1)
    height = smooth[span]
    ok = height > 0
    if ok.sum() >= 3:
        octave = np.log2(_amplitude(span[ok]))
        a, b, _ = np.polyfit(octave, np.log(height[ok]), 2, w=np.sqrt(height[ok]))
        if a < 0 and abs(-b / (2 * a) - np.log2(_amplitude(mode))) < math.log2(1 + MODE_SEARCH):
            return float(2.0 ** (-b / (2 * a)))
    return float(_amplitude(mode))


def _confidence(score: float) -> float:
    """1 at the detection threshold maps to 0.5, twice it to 0.75, ...: ``1 - 0.5 / score``."""
    return float(np.clip(1 - 0.5 / max(score, 1e-9), 0.0, 1.0))


def _band_edge(counts: np.ndarray, best: int, baseline: float, level: float) -> float:
    """The amplitude under the pile-up where the smoothed density falls to halfway between the
    pile-up's centre and the density below it, kept within :data:`BAND` of ``level``."""
    smooth = np.convolve(counts.astype(np.float64), np.ones(2 * _bins(0.0025) + 1) / (2 * _bins(0.0025) + 1), "same")
    half_height = baseline + (smooth[best] - baseline) / 2
    lowest = best - _bins(BAND[1])
    index = best
    while index > lowest and smooth[index] > half_height:
        index -= 1
    edge = float(_amplitude(index))
    return float(np.clip(edge, level * (1 - BAND[1]), level * (1 - BAND[0])))
