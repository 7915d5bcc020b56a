"""Clip levels of recordings whose plateaus a codec, a resampler or a gain stage has smeared.

Plateau detection (:mod:`declip.detection.plateaus`) needs runs of samples at the extreme value.
After lossy coding the clipped tops ripple around the level (an MP3 decoder lifts some 5-10 %
above it), so nothing sits at the extreme. What survives is the amplitude distribution: the
samples that were clipped pile up in a narrow band around the level, where clean music thins out
smoothly towards its peak. Per channel and polarity this module histograms ``log |y|`` (one pass
over blocks), looks for that pile-up, and reports a level, a kind and a confidence:

- ``hard-coded``: a pile-up with samples on both sides of it (codec noise around a flat top).
  A strong pile-up counts alone; a moderate one needs a partner, a pile-up of the opposite
  polarity (in any channel) at the same level: clipping flattens both polarities at the
  converter's rails, where a sustained sound or a loud passage can make a bump on one side only.
  A codec that adds noise of a few % of the level (Opus) spreads the pile-up over ±5-10 %, too
  wide for that test; a wide pile-up (a bump: denser ±5 % around the level than 15-30 % under it
  and 15-30 % over it) counts when it has a partner and the half-cycles' peaks (each run of one
  sign's largest magnitude: every half-cycle that reached the rail peaks there) pile up at the
  same level, with a partner too. A clean track can have either bump (a sustained tone, a
  compressed master), seldom both; saturation makes both, and a squashed top (below) wins.
  A pile-up with the peak less than 3 % above it is a ceiling (a limiter's, a sustained tone's
  round tops) unless it has a partner and the mask network marks the samples near it clipped:
  light clipping whose flat tops MP3 or AAC lifted by less than that (alone, it can be an AAC
  decoder's overshoot piling up under a peak far over the level; :meth:`CodedClipLevel.confirmed`;
  :func:`declip.detection.measurement.measure` asks the network in a second pass; this module's
  estimate alone calls such a polarity ``soft`` and notes its ``ceiling``);
- ``soft``: no pile-up, but the top of the distribution is squashed (tanh or arctan
  saturation, a brick-wall limiter driven hard): the upper quantiles crowd together, in shape
  (the tail index) and in extent (the top 0.1 % of samples within 2.1 % of the 99.99th
  percentile). Mastered music is often limited too, but less: its top 0.1 % spreads over
  2.5 % or more, and it is not flagged;
- ``none``: neither.

Thresholds were set on the music corpus's training and validation splits (clean and clipped,
coded with MP3 and Opus; docs/results.md); ``sensitivity`` > 1 flags weaker evidence, < 1 asks
for more.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

BINS_PER_OCTAVE = 700  # log-amplitude bins: 0.1 % wide
LOWEST = 2.0**-20  # amplitudes below this are not histogrammed (digital silence, dither)
OCTAVES = 22  # up to 4.0 (float files may exceed full scale)
PILE_HALF_WIDTH = 0.015  # the band around a candidate level, relative
BELOW = (0.07, 0.03)  # the reference band below it: from 7 % to 3 % under the level
PILE_RATIO = 1.35  # density in the band over the density below it, to call a pile-up that has a partner
PILE_ALONE = 2.0  # ... and one that has none
PILE_AGREE = 0.05  # partners: pile-ups of opposite polarities (any channel) whose levels agree this closely
PILE_Z = 8.0  # and its excess in Poisson standard deviations
PILE_MIN_SHARE = 2e-4  # and at least this share of the polarity's samples in the band
MIN_LEVEL = 2.0**-10  # no level below this (-60 dBFS), where quantisation and dither make their own piles
TAIL_INDEX_MAX = 0.35  # (q99.99 - q99.9) / (q99.9 - q99) at or below this: a compressed top ...
SPREAD_MAX = 0.021  # ... and (q99.99 - q99.9) / q99.99 at or below this: squashed, not only mastered (saturated)
TAIL_MIN_SAMPLES = 20000  # fewer samples of a polarity: too few for the 99.99th percentile
LOWEST_CANDIDATE = 0.1  # levels are looked for above this quantile of the amplitudes
MODE_SEARCH = 0.12  # the pile-up's centre lies within 12 % of where its ratio peaks
WIDE_HALF_WIDTH = 0.05  # the wide pile-up (smeared by a noisier codec): the band around a level, relative
WIDE_BELOW = (0.30, 0.15)  # its reference bands: from 30 % to 15 % under the level ...
WIDE_ABOVE = (0.15, 0.30)  # ... and from 15 % to 30 % over it (the denser one counts: a bump, not a slope)
WIDE_RATIO = 1.2  # samples: the band's density over the reference's, on both sides of a partnership
PEAKS_RATIO = 1.25  # half-cycle peaks: the same, at the samples' level (see WIDE_AGREE)
WIDE_AGREE = (0.95, 1.30)  # half-cycle peaks' level over the samples': the largest of a noisy top sits over it
PEAKS_Z = 5.0  # half-cycle peaks' pile-up: its excess in Poisson standard deviations ...
PEAKS_MIN_SHARE = 1e-3  # ... and at least this share of the polarity's half-cycles in the band
CEILING_MARKED = 0.15  # a ceiling is hard clipping when the mask network marks this share of the samples near it

LOWEST_LEVEL_BIN = math.ceil((math.log2(MIN_LEVEL) - math.log2(LOWEST)) * BINS_PER_OCTAVE)  # MIN_LEVEL's bin

KINDS = ("hard", "hard-coded", "soft", "none")
DESCRIPTIONS = {
    "hard": "hard-clipped",
    "hard-coded": "hard-clipped, then lossy-coded or filtered",
    "soft": "saturated, not hard-clipped",
    "none": "nothing clipped",
}


@dataclass(frozen=True)
class PolarityEstimate:
    """One channel's one polarity: ``level`` (a magnitude: the centre of the pile-up, or the peak), ``kind``,
    ``confidence`` in [0, 1] (of the kind stated), the pile-up ``ratio``, the ``tail_index`` and the
    ``spread`` of the top; ``ceiling``: the level of a partnered pile-up just under the peak (``soft`` until
    the mask network is asked, see :meth:`as_hard`), else ``None``."""

    level: float
    kind: str
    confidence: float
    ratio: float
    tail_index: float
    peak: float
    spread: float = float("nan")  # (q99.99 - q99.9) / q99.99
    ceiling: float | None = None  # a pile-up's level with the peak within 3 % above it: see ``as_hard``

    def as_hard(self, marked: float, sensitivity: float = 1.0) -> PolarityEstimate:
        """This polarity hard-clipped at its ``ceiling`` where the mask network marked a share ``marked`` of
        the samples near it clipped (:data:`CEILING_MARKED` or more: light clipping after coding, whose tops
        a codec lifted by less than 3 %); else unchanged (a limiter's ceiling, or no ceiling)."""
        score = marked * sensitivity / CEILING_MARKED
        if self.ceiling is None or not score >= 1:  # NaN: not marked
            return self
        confidence = min(self.confidence, _confidence(score))
        return replace(self, level=self.ceiling, kind="hard-coded", confidence=confidence, ceiling=None)


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
        """``(high, low)`` levels ``(channels, 1)`` for :class:`declip.Clipping`: the pile-up's centre
        where a polarity is hard-clipped, else just past the peak (nothing clipped there)."""

        def level(p: PolarityEstimate, other: PolarityEstimate) -> float:
            if p.kind == "hard-coded":
                return p.level
            return max(p.peak, other.peak if other.kind != "hard-coded" else other.level, 1e-9) * (1 + 1e-3) + 1e-9

        high = [level(h, lo) for h, lo in zip(self.high, self.low)]
        low = [-level(lo, h) for h, lo in zip(self.high, self.low)]
        return torch.tensor(high)[:, None], torch.tensor(low)[:, None]

    def ceilings(self) -> Tensor:
        """``(channels, 2)``: the level of each polarity (0: positive) called soft for a pile-up just under its
        peak, which :meth:`confirmed` may turn hard-clipped; NaN for the others."""
        nan = float("nan")
        return torch.tensor(
            [[nan if p.ceiling is None else p.ceiling for p in pair] for pair in zip(self.high, self.low)]
        )

    def confirmed(self, marked: Tensor, sensitivity: float = 1.0) -> CodedClipLevel:
        """The estimate with each ceiling re-decided from ``marked`` ``(channels, 2)``: the share of the samples
        near it that the mask network marks clipped (see :meth:`PolarityEstimate.as_hard`; the share comes from
        :func:`declip.detection.coded_mask.marked_share`, which :func:`declip.detection.measurement.measure`
        runs in a second pass over the recording)."""
        high = [p.as_hard(float(marked[c, 0]), sensitivity) for c, p in enumerate(self.high)]
        low = [p.as_hard(float(marked[c, 1]), sensitivity) for c, p in enumerate(self.low)]
        return CodedClipLevel(high=high, low=low)

    def enabled(self) -> Tensor:
        """``(channels, 2)``: whether each channel's positive and negative polarity is hard-clipped."""
        return torch.tensor([[h.kind == "hard-coded", lo.kind == "hard-coded"] for h, lo in zip(self.high, self.low)])


class AmplitudeHistogram:
    """Counts of ``log2 |y|`` per channel and polarity, accumulated block by block ``(channels, time)``,
    of the samples (``counts``) and of the half-cycles' peaks (``cycle_counts``: each run of samples of
    one sign, its largest magnitude; a run that a block's end cuts is completed by the next block)."""

    def __init__(self, channels: int) -> None:
        self.counts = np.zeros((channels, 2, BINS_PER_OCTAVE * OCTAVES + 1), dtype=np.int64)
        self.cycle_counts = np.zeros_like(self.counts)
        self.peaks = np.zeros((channels, 2))
        self._open = [(True, 0.0)] * channels  # per channel: the unfinished run's sign (>= 0) and peak

    def add(self, block: Tensor) -> None:
        v = block.detach().to("cpu", torch.float64)
        for polarity, signal in enumerate((v, -v)):
            self.peaks[:, polarity] = np.maximum(self.peaks[:, polarity], signal.amax(-1).clamp(min=0).numpy())
            index = _bin_index(signal.numpy())  # bin 0: silence and the other polarity
            for c in range(v.shape[0]):
                self.counts[c, polarity] += np.bincount(index[c], minlength=self.counts.shape[-1])
        for c in range(v.shape[0]):
            self._add_cycles(c, v[c].numpy())

    def _add_cycles(self, channel: int, v: np.ndarray) -> None:
        if not len(v):
            return
        positive = v >= 0
        starts = np.concatenate([[0], np.flatnonzero(positive[1:] != positive[:-1]) + 1])
        peaks, signs = np.maximum.reduceat(np.abs(v), starts), positive[starts]
        sign, peak = self._open[channel]
        if signs[0] == sign:  # the run left open by the previous block goes on
            peaks[0] = max(peaks[0], peak)
        else:
            peaks, signs = np.concatenate([[peak], peaks]), np.concatenate([[sign], signs])
        self._open[channel] = (bool(signs[-1]), float(peaks[-1]))
        peaks, signs = peaks[:-1], signs[:-1]
        for polarity, mask in enumerate((signs, ~signs)):
            index = _bin_index(peaks[mask & (peaks > LOWEST)])
            self.cycle_counts[channel, polarity] += np.bincount(index, minlength=self.counts.shape[-1])

    def estimate(self, sensitivity: float = 1.0) -> CodedClipLevel:
        if sensitivity <= 0:
            raise ValueError(f"sensitivity must be positive; got {sensitivity}")
        channels = range(len(self.counts))
        piles = [[_strongest_pile(self.counts[c, p], sensitivity) for c in channels] for p in (0, 1)]
        wide = [[_strongest_wide_pile(self.counts[c, p], sensitivity) for c in channels] for p in (0, 1)]
        cycles = [
            [_strongest_wide_pile(self.cycle_counts[c, p], sensitivity, PEAKS_Z, PEAKS_MIN_SHARE) for c in channels]
            for p in (0, 1)
        ]

        def one(c: int, p: int) -> PolarityEstimate:
            pile, counts, peak = piles[p][c], self.counts[c, p], float(self.peaks[c, p])
            partner = _partner(pile, piles[1 - p])
            smeared = _wide_score(wide[p][c], wide[1 - p], cycles[p][c], cycles[1 - p], sensitivity)
            return _estimate_polarity(counts, peak, sensitivity, pile, partner, wide[p][c], smeared)

        return CodedClipLevel(high=[one(c, 0) for c in channels], low=[one(c, 1) for c in channels])


def estimate_clip_level(y: Tensor, sensitivity: float = 1.0) -> CodedClipLevel:
    """Levels, kinds and confidences of ``y`` ``(channels, time)`` from its amplitude distribution."""
    return estimate_clip_level_blocks([y], y.shape[0], sensitivity)


def estimate_clip_level_blocks(blocks: Iterable[Tensor], channels: int, sensitivity: float = 1.0) -> CodedClipLevel:
    """:func:`estimate_clip_level` over consecutive blocks ``(channels, time)`` (one pass)."""
    histogram = AmplitudeHistogram(channels)
    for block in blocks:
        histogram.add(block)
    return histogram.estimate(sensitivity)


def _bin_index(amplitude: np.ndarray) -> np.ndarray:
    """The histogram bin of each amplitude; bin 0 for those at or below :data:`LOWEST`."""
    index = ((np.log2(np.maximum(amplitude, LOWEST)) - math.log2(LOWEST)) * BINS_PER_OCTAVE).astype(np.int64)
    return np.where(amplitude > LOWEST, index.clip(0, BINS_PER_OCTAVE * OCTAVES), 0)


def _amplitude(index: np.ndarray | float) -> np.ndarray | float:
    return LOWEST * 2.0 ** (np.asarray(index) / BINS_PER_OCTAVE + 0.5 / BINS_PER_OCTAVE)


def _bins(relative: float) -> int:
    return max(1, round(math.log2(1 + relative) * BINS_PER_OCTAVE))


@dataclass(frozen=True)
class _Pile:
    """A polarity's strongest pile-up candidate: its density ratio and its level."""

    ratio: float
    level: float


def _strongest_pile(counts: np.ndarray, sensitivity: float) -> _Pile | None:
    """The candidate level with the strongest pile-up (enough samples, :data:`PILE_Z` deviations
    over the band below, at or above :data:`MIN_LEVEL`), or ``None`` when no candidate has enough;
    its ratio may be under any threshold (the decision is :func:`_estimate_polarity`'s)."""
    total = int(counts[1:].sum())
    if total == 0:
        return None
    half, lo, hi = _bins(PILE_HALF_WIDTH), _bins(BELOW[0]), _bins(BELOW[1])
    window = np.convolve(counts.astype(np.float64), np.ones(2 * half + 1), "same")  # band mass at each centre
    below = np.convolve(counts.astype(np.float64), np.ones(lo - hi + 1), "full")[: len(counts)]  # mass of [i-lo+hi, i]
    reference = np.zeros_like(window)
    reference[hi:] = below[:-hi] * (2 * half + 1) / (lo - hi + 1)  # mass of [i-lo, i-hi], scaled to the band's width
    floor = int(np.searchsorted(np.cumsum(counts[1:]), LOWEST_CANDIDATE * total)) + 1
    top = int(np.nonzero(counts)[0].max())
    candidates = np.arange(max(floor, lo, LOWEST_LEVEL_BIN), top + 1)
    if not len(candidates):
        return None
    ratio = window[candidates] / np.maximum(reference[candidates], 1.0)
    z = (window[candidates] - reference[candidates]) / np.sqrt(reference[candidates] + 1.0)
    enough = (window[candidates] >= PILE_MIN_SHARE * total) & (z >= PILE_Z / sensitivity)
    if not enough.any():
        return None
    ratio = np.where(enough, ratio, 0.0)
    best = _mode_near(window, int(candidates[int(np.argmax(ratio))]), top)
    return _Pile(float(ratio.max()), _vertex(counts, best))


def _strongest_wide_pile(
    counts: np.ndarray, sensitivity: float, z_min: float = PILE_Z, min_share: float = PILE_MIN_SHARE
) -> _Pile | None:
    """The candidate level with the strongest wide pile-up: the density within
    :data:`WIDE_HALF_WIDTH` of it over the denser of the reference bands :data:`WIDE_BELOW` and
    :data:`WIDE_ABOVE` (a bump, not the rising side of the distribution), with ``z_min`` deviations and
    ``min_share`` of the polarity's counts in the band, at or above :data:`MIN_LEVEL`; its level is the
    densest band within the half-width of the strongest ratio. ``None`` when no candidate has enough."""
    c = counts.astype(np.float64)
    c[0] = 0.0
    total = c.sum()
    if total == 0:
        return None
    cumulative = np.concatenate([[0.0], np.cumsum(c)])
    n, i = len(c), np.arange(len(c))

    def mass(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:  # counts in [i + lo, i + hi] (relative)
        first = np.clip(i + round(math.log2(lo) * BINS_PER_OCTAVE), 0, n)
        last = np.clip(i + round(math.log2(hi) * BINS_PER_OCTAVE) + 1, 0, n)
        return cumulative[last] - cumulative[first], np.maximum(last - first, 1)

    band, width = mass(1 - WIDE_HALF_WIDTH, 1 + WIDE_HALF_WIDTH)
    below, below_width = mass(1 - WIDE_BELOW[0], 1 - WIDE_BELOW[1])
    above, above_width = mass(1 + WIDE_ABOVE[0], 1 + WIDE_ABOVE[1])
    reference = np.maximum(below / below_width, above / above_width) * width  # scaled to the band's width
    ratio = band / np.maximum(reference, 1.0)
    z = (band - reference) / np.sqrt(reference + 1.0)
    floor = int(np.searchsorted(cumulative[1:], LOWEST_CANDIDATE * total))
    top = int(np.nonzero(c)[0].max())
    enough = (i >= max(floor, LOWEST_LEVEL_BIN)) & (i <= top) & (band >= min_share * total) & (z >= z_min / sensitivity)
    if not enough.any():
        return None
    ratio = np.where(enough, ratio, 0.0)
    strongest = int(np.argmax(ratio))
    reach = _bins(WIDE_HALF_WIDTH)
    lo, hi = max(strongest - reach, 0), min(strongest + reach, top) + 1
    best = lo + int(np.argmax(band[lo:hi]))
    return _Pile(float(ratio[strongest]), float(_amplitude(best)))


def _wide_score(
    pile: _Pile | None,
    others: list[_Pile | None],
    cycles: _Pile | None,
    other_cycles: list[_Pile | None],
    sensitivity: float,
) -> float:
    """1 at the threshold: the samples' wide pile-up and its partner (see :func:`_partner`) both at
    :data:`WIDE_RATIO`, and the half-cycle peaks' pile-up (at 0.95-1.3 times the samples' level: the
    largest of a long noisy plateau lies well over it) and its partner both at :data:`PEAKS_RATIO`
    (each threshold ``1 + (T - 1) / sensitivity``); the smaller of the two scores, 0 when either is
    missing."""
    if pile is None or cycles is None or not WIDE_AGREE[0] <= cycles.level / pile.level <= WIDE_AGREE[1]:
        return 0.0
    samples = (min(pile.ratio, _partner(pile, others)) - 1) * sensitivity / (WIDE_RATIO - 1)
    peaks = (min(cycles.ratio, _partner(cycles, other_cycles)) - 1) * sensitivity / (PEAKS_RATIO - 1)
    return max(min(samples, peaks), 0.0)


def _partner(pile: _Pile | None, others: list[_Pile | None]) -> float:
    """The strongest ratio among ``others`` (the opposite polarity's piles, every channel) whose
    level agrees with ``pile``'s within :data:`PILE_AGREE`; 0 when none does."""
    if pile is None:
        return 0.0
    agree = [o.ratio for o in others if o is not None and abs(o.level / pile.level - 1) <= PILE_AGREE]
    return max(agree, default=0.0)


def _pile_score(ratio: float, partner: float, sensitivity: float) -> float:
    """1 at the threshold: a ratio of :data:`PILE_ALONE`, or of :data:`PILE_RATIO` on both sides
    of a partnership (each threshold ``1 + (T - 1) / sensitivity``)."""
    alone = (ratio - 1) * sensitivity / (PILE_ALONE - 1)
    paired = (min(ratio, partner) - 1) * sensitivity / (PILE_RATIO - 1)
    return max(alone, paired, 0.0)


def _soft_score(tail: float, spread: float, sensitivity: float) -> float:
    """1 at the threshold: the smaller of ``TAIL_INDEX_MAX * sensitivity / tail`` and
    ``SPREAD_MAX * sensitivity / spread`` (a squashed top needs both); 0 without enough samples."""
    if not math.isfinite(tail):
        return 0.0
    return min(TAIL_INDEX_MAX / max(tail, 1e-9), SPREAD_MAX / max(spread, 1e-9)) * sensitivity


def _top_shape(counts: np.ndarray) -> tuple[float, float]:
    """The tail index ``(q99.99 - q99.9) / (q99.9 - q99)`` of the polarity's amplitudes (about 0.6-1
    for music, 0.82 for a Gaussian, 1 for a Laplacian, near 0 when the top is squashed) and the
    spread ``(q99.99 - q99.9) / q99.99`` (mastered music 0.025 and more, tanh or a limiter driven
    10 dB into its ceiling 0.02 and less); NaN for both under :data:`TAIL_MIN_SAMPLES`."""
    total = counts[1:].sum()
    if total < TAIL_MIN_SAMPLES:
        return float("nan"), float("nan")
    cumulative = np.cumsum(counts[1:])
    q = [_amplitude(np.searchsorted(cumulative, p * total) + 1) for p in (0.99, 0.999, 0.9999)]
    return float((q[2] - q[1]) / max(q[1] - q[0], 1e-12)), float((q[2] - q[1]) / q[2])


def _estimate_polarity(
    counts: np.ndarray,
    peak: float,
    sensitivity: float,
    pile: _Pile | None,
    partner: float,
    wide: _Pile | None = None,
    wide_score: float = 0.0,
) -> PolarityEstimate:
    """One polarity's kind from its strongest ``pile`` and its ``partner``'s ratio (see
    :func:`_partner`), else from its ``wide`` pile-up's score (see :func:`_wide_score`), else from the
    shape of its top."""
    total = int(counts[1:].sum())
    tail, spread = _top_shape(counts)
    none = PolarityEstimate(peak, "none", 1.0, 0.0, tail, peak, spread)
    if total == 0 or peak <= 0:
        return none
    ratio = pile.ratio if pile is not None else 0.0
    pile_score = _pile_score(ratio, partner, sensitivity) if pile is not None else 0.0
    soft_score = _soft_score(tail, spread, sensitivity)
    if pile is not None and pile_score >= 1:
        if peak < pile.level * (1 + 2 * PILE_HALF_WIDTH):  # peak within 3 %: a ceiling, or light clipping that the
            confidence = _confidence(pile_score)  # codec barely lifted (with a partner: the mask network decides)
            ceiling = pile.level if partner > 0 else None
            return PolarityEstimate(peak, "soft", confidence, ratio, tail, peak, spread, ceiling=ceiling)
        return PolarityEstimate(pile.level, "hard-coded", _confidence(pile_score), ratio, tail, peak, spread)
    wide_top = wide is not None and peak >= wide.level * (1 + 2 * WIDE_HALF_WIDTH)
    if wide_top and wide_score >= 1 and soft_score < 1:  # a wide pile-up, unless the top is squashed (saturation)
        confidence = _confidence(wide_score)
        return PolarityEstimate(wide.level, "hard-coded", confidence, wide.ratio, tail, peak, spread)
    if soft_score >= 1:
        return PolarityEstimate(peak, "soft", _confidence(soft_score), ratio, tail, peak, spread)
    doubt = max(pile_score, soft_score, wide_score, 0.0)
    return PolarityEstimate(peak, "none", float(np.clip(1 - doubt, 0, 1)), ratio, tail, peak, spread)


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
