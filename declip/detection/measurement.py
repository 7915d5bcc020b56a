"""Which measurement model to restore under: exact plateaus, a coded level with learned masks, or none.

Clip, then code: a codec leaves the clipped samples scattered around the level θ, some above and
some below it, so consistency cannot pin them to y. The model used here: the level is the centre of
the pile-up (:mod:`declip.detection.coded`), the clipped samples are the ones
:class:`~declip.detection.coded_mask.ClipMaskNet` marks, the network sees the input as a hard-clipped
recording (marked samples at the level, the rest inside it), and the restoration is only asked to
end at or beyond each marked sample's coded value. Unmarked samples are kept bit-exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from declip.detection.coded import DESCRIPTIONS, KINDS, CodedClipLevel, estimate_clip_level_blocks
from declip.detection.coded_mask import LearnedMaskClipping, marked_share
from declip.physics import ClipMasks, Clipping


@dataclass(frozen=True)
class Measurement:
    """The clipping operator to restore under (its masks and the network's input with them), whether
    anything is to be restored, per-channel kinds and confidences, and the coded estimate if any."""

    physics: Clipping
    clipped: bool | None  # None: a level given by hand (the masks decide)
    kinds: tuple[str, ...]
    confidences: tuple[float, ...]
    coded: CodedClipLevel | None = None

    @property
    def kind(self) -> str:
        """The strongest kind over the channels (hard before hard-coded before soft before none)."""
        return next(k for k in (*KINDS, "given") if k in self.kinds)

    @property
    def confidence(self) -> float:
        found = [c for k, c in zip(self.kinds, self.confidences) if k == self.kind]
        return min(found) if self.kind == "none" else max(found)

    def describe(self) -> str:
        """``hard-clipped, then lossy-coded or filtered (confidence 0.84)``, for one-line reports."""
        if self.kind == "given":
            return "clip level given by hand"
        return f"{DESCRIPTIONS[self.kind]} (confidence {self.confidence:.2f})"

    def input_for_network(self, y: Tensor, masks: ClipMasks | None = None) -> Tensor:
        """``y`` as the network should see it (after coding: a hard-clipped recording at the level)."""
        return self.physics.network_input(y, masks)


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
    sensitivity: float = 1.0,
) -> Measurement:
    """Plateau detection's result when it found clipping (or a level was given), else the coded estimate
    from ``blocks()`` (read once more, twice where a ceiling is asked about). Uncoded hard clipping is left
    exactly as before."""
    if detected is not False:
        return plateau_measurement(physics, detected, channels)
    return coded_measurement(blocks, channels, sensitivity)
