"""Which measurement model to restore under: exact plateaus, a coded level with learned masks, or none.

Clip, then code: a codec leaves the clipped samples scattered around the level θ, some above and
some below it, so consistency cannot pin them to y. The model used here: the level is the centre of
the pile-up (:mod:`declip.detection.coded`), the clipped samples are the ones
:class:`~declip.detection.coded_mask.ClipMaskNet` marks, the network sees the input as a hard-clipped
recording (marked samples at the level, the rest inside it), and the restoration is only asked to
end at or beyond each marked sample's coded value. Unmarked samples are kept bit-exact.

Where the input as it is shows nothing, the estimate is taken once more on the input without its slow
baseline (:mod:`declip.detection.baseline`: a codec that removed the lowest frequencies left the plateaus
on a moving baseline); found that way, the restoration runs on the input without it and puts it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from declip.detection.baseline import SlowBaseline, estimate_baseline
from declip.detection.coded import DESCRIPTIONS, KINDS, CodedClipLevel, estimate_clip_level_blocks
from declip.detection.coded_mask import LearnedMaskClipping, marked_share
from declip.physics import ClipMasks, Clipping

POLARITIES_AGREE = 0.1  # relative: both polarities' levels, found once the slow baseline is out


@dataclass(frozen=True)
class Measurement:
    """The clipping operator to restore under (its masks and the network's input with them), whether
    anything is to be restored, per-channel kinds and confidences, the coded estimate if any, and the
    slow baseline the levels hold on if one was taken out (see :meth:`level_view`)."""

    physics: Clipping
    clipped: bool | None  # None: a level given by hand (the masks decide)
    kinds: tuple[str, ...]
    confidences: tuple[float, ...]
    coded: CodedClipLevel | None = None
    baseline: SlowBaseline | None = None

    @property
    def kind(self) -> str:
        """The strongest kind over the channels (hard before hard-coded before soft before none)."""
        return next(k for k in (*KINDS, "given") if k in self.kinds)

    @property
    def confidence(self) -> float:
        found = [c for k, c in zip(self.kinds, self.confidences) if k == self.kind]
        return min(found) if self.kind == "none" else max(found)

    def describe(self) -> str:
        """``hard-clipped, then lossy-coded or filtered (confidence 0.84)``, for one-line reports (``..., on a moving
        baseline (...)`` where the levels held only once a slow baseline was taken out)."""
        if self.kind == "given":
            return "clip level given by hand"
        moving = ", on a moving baseline" if self.baseline is not None else ""
        return f"{DESCRIPTIONS[self.kind]}{moving} (confidence {self.confidence:.2f})"

    def level_view(self, y: Tensor, start: int = 0) -> Tensor:
        """``y`` ``(channels, frames)``, its first sample at ``start`` in the file, as the levels and masks
        apply to it: without the slow baseline where one was taken out, else ``y`` itself."""
        return y if self.baseline is None else self.baseline.removed(y, start)

    def input_for_network(self, y: Tensor, masks: ClipMasks | None = None) -> Tensor:
        """``y`` (a :meth:`level_view`) as the network should see it (after coding: a hard-clipped recording at
        the level)."""
        return self.physics.network_input(y, masks)

    def finish(self, restored: Tensor, y: Tensor, masks: ClipMasks, start: int = 0) -> Tensor:
        """``restored`` (projected in the :meth:`level_view` of ``y``) back on ``y``'s baseline; the samples
        ``masks`` leave reliable are ``y``'s own, bit-exact, and the marked ones at or beyond ``y`` exactly (the
        baseline's round trip can round a sample just short of it)."""
        if self.baseline is None:
            return restored
        back = self.baseline.put_back(restored, start)
        return torch.where(masks.high, back.maximum(y), torch.where(masks.low, back.minimum(y), y))


def plateau_measurement(physics: Clipping, detected: bool | None, channels: int) -> Measurement:
    """The measurement of exact plateau detection (``detected``) or of a level given by hand (``None``)."""
    if detected is None:
        return Measurement(physics, None, ("given",) * channels, (1.0,) * channels)
    kinds = ("hard" if detected else "none",) * channels
    return Measurement(physics, detected, kinds, (1.0,) * channels)


def coded_measurement(blocks: Callable[[], Iterable[Tensor]], channels: int, sensitivity: float = 1.0) -> Measurement:
    """The measurement of a recording without plateaus, from its amplitude distribution (one pass
    over ``blocks()``; a second one, through the mask network, where a pile-up lies just under the peak:
    a limiter's ceiling or light clipping that the codec barely lifted): learned masks at the level where
    a polarity is hard-clipped then coded; else nothing to restore (soft saturation is reported, not restored)."""
    level = estimate_clip_level_blocks(blocks(), channels, sensitivity)
    ceilings = level.ceilings()
    asked = ~ceilings.isnan()
    if asked.any():  # the network's input scaled as the restoration will scale it, at each ceiling
        high, low = level.thresholds()
        levels = torch.where(asked, ceilings, torch.cat([high, -low], 1))
        level = level.confirmed(marked_share(levels, asked, blocks()), sensitivity)
    high, low = level.thresholds()
    kinds = tuple(level.kind(c) for c in range(channels))
    confidences = tuple(level.confidence(c) for c in range(channels))
    physics = LearnedMaskClipping(high, low, level.enabled()) if level.any_hard else Clipping(high, low)
    return Measurement(physics, level.any_hard, kinds, confidences, coded=level)


def measure(
    physics: Clipping,
    detected: bool | None,
    channels: int,
    blocks: Callable[[], Iterable[Tensor]],
    sample_rate: int,
    sensitivity: float = 1.0,
) -> Measurement:
    """Plateau detection's result when it found clipping (or a level was given), else the coded estimate
    from ``blocks()`` (read once more, twice where a ceiling is asked about); where that finds nothing on any
    channel, the estimate on ``blocks()`` without their slow baseline (one pass more to take it, and the same
    again), kept if it finds hard clipping on both polarities of each channel it finds, at agreeing levels
    (:func:`polarities_agree`). So a file without plateaus and without clipping is read up to six times.
    Uncoded hard clipping is left exactly as before."""
    if detected is not False:
        return plateau_measurement(physics, detected, channels)
    found = coded_measurement(blocks, channels, sensitivity)
    if any(kind != "none" for kind in found.kinds):
        return found
    baseline = estimate_baseline(blocks(), sample_rate)
    again = coded_measurement(lambda: baseline.removed_blocks(blocks()), channels, sensitivity)
    return replace(again, baseline=baseline) if again.clipped and polarities_agree(again.coded) else found


def polarities_agree(level: CodedClipLevel) -> bool:
    """Whether every channel found hard-clipped is so on both polarities at levels within
    :data:`POLARITIES_AGREE` of each other: the premise of the baseline's estimate (the midpoint of
    plateaus on both sides). On clean music, taking out its estimate can leave a pile-up elsewhere (near
    zero, on one polarity: seen on a held-out track after MP3 and Opus)."""
    for high, low in zip(level.high, level.low):
        kinds = {high.kind, low.kind}
        if "hard-coded" not in kinds:
            continue
        if kinds != {"hard-coded"} or abs(high.level - low.level) > POLARITIES_AGREE * max(high.level, low.level):
            return False
    return True
