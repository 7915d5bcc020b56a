"""The detection result the page shows: clip level, share of clipped samples and kind, per channel.

Found as ``declip restore`` finds it: plateau detection (:mod:`declip.detection.plateaus`), else the
coded-level estimate (:func:`declip.detection.measurement.measure`), or the level given by hand; the
measurement found is kept for the restoration, so a file is detected or estimated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from declip.detection.coded import DESCRIPTIONS
from declip.detection.coded_mask import with_context
from declip.detection.measurement import Measurement, measure
from declip.detection.plateaus import detect_clip_level_blocks
from declip.errors import ConfigError
from declip.inference.reading import read_blocks
from declip.physics import Clipping

BLOCK_FRAMES = 1 << 20
SYMMETRIC = 0.01  # levels whose magnitudes differ by less than this share count as one symmetric level


@dataclass(frozen=True)
class ClippingSummary:
    """Per channel: the positive and negative levels, the share of samples at or beyond them (the
    samples the restoration changes), which polarities are clipped, and the kind with its confidence."""

    high: list[float]
    low: list[float]
    share: list[float]
    kind: list[str]  # declip.detection.coded.KINDS, or "given"
    confidence: list[float]
    clipped_high: list[bool]
    clipped_low: list[bool]
    measurement: Measurement | None = field(default=None, repr=False, compare=False)  # what the restoration takes

    @property
    def given(self) -> bool:
        return "given" in self.kind

    @property
    def clipped(self) -> bool:
        return any(share > 0 for share in self.share)

    def describe(self, channel: int) -> str:
        """``hard-clipped, symmetric (confidence 1.00)`` for one channel."""
        high, low = self.high[channel], self.low[channel]
        positive, negative = self.clipped_high[channel], self.clipped_low[channel]
        if positive and negative:
            sides = "symmetric" if abs(high + low) <= SYMMETRIC * max(high, -low) else "asymmetric"
        else:
            sides = "positive peaks only" if positive else "negative peaks only" if negative else ""
        kind = self.kind[channel]
        if kind == "given":
            return "level given by hand" + (f", {sides}" if sides else ", nothing at or beyond it")
        if not sides and kind in ("hard", "hard-coded"):  # another channel is clipped, not this one
            return DESCRIPTIONS["none"]
        text = DESCRIPTIONS[kind] + (f", {sides}" if sides else "")
        return f"{text} (confidence {self.confidence[channel]:.2f})"

    def markdown(self) -> str:
        source = "given" if self.given else "detected"
        rows = [f"| channel | level ({source}) | clipped | kind |", "|---|---|---|---|"]
        for channel, (high, low, share) in enumerate(zip(self.high, self.low, self.share)):
            positive = f"+{high:.4f}" if self.clipped_high[channel] else "–"
            negative = f"{low:.4f}" if self.clipped_low[channel] else "–"
            rows.append(f"| {channel + 1} | {positive} / {negative} | {100 * share:.2f} % | {self.describe(channel)} |")
        return "\n".join(rows)


def summarise_clipping(path: str | Path, threshold: float | None = None) -> ClippingSummary:
    """Find the clip level of the audio file ``path`` as ``declip restore`` does (or take ``threshold``,
    symmetric) and count the samples it marks clipped; the measurement found is kept (``measurement``) for
    :func:`~declip.inference.restore.restore_file` to restore under. Raises ``ConfigError`` on unreadable audio."""

    def blocks():
        for data in read_blocks(path, BLOCK_FRAMES):
            yield torch.from_numpy(np.ascontiguousarray(data.T))

    try:
        info, level = sf.info(path), None
        channels = info.channels
        if threshold is None:
            level = detect_clip_level_blocks(blocks)
            physics, detected = Clipping(level.high, level.low), level.any
        else:
            if threshold <= 0:
                raise ConfigError(f"clip level must be positive; got {threshold}")
            physics, detected = Clipping.at_level(threshold, channels), None
        measurement = measure(physics, detected, channels, blocks, info.samplerate)
        physics = measurement.physics
        counts = {"high": torch.zeros(channels, dtype=torch.long), "low": torch.zeros(channels, dtype=torch.long)}
        frames = 0
        for left, block, right in with_context(blocks(), physics.context):
            if measurement.clipped is not False:  # else nothing is restored: the restoration copies the input
                window = measurement.level_view(torch.cat([left, block, right], -1), frames - left.shape[-1])
                masks = physics.masks(window)
                inside = slice(left.shape[-1], left.shape[-1] + block.shape[-1])
                counts["high"] += masks.high[:, inside].sum(-1)
                counts["low"] += masks.low[:, inside].sum(-1)
            frames += block.shape[-1]
    except (sf.LibsndfileError, RuntimeError) as error:
        raise ConfigError(f"unreadable audio ({error})") from error
    except ValueError as error:  # detection found no samples
        raise ConfigError("the file holds no samples") from error
    if frames == 0:
        raise ConfigError("the file holds no samples")
    return ClippingSummary(
        high=physics.high[:, 0].tolist(),
        low=physics.low[:, 0].tolist(),
        share=[count / frames for count in (counts["high"] + counts["low"]).tolist()],
        kind=list(measurement.kinds),
        confidence=[float(c) for c in measurement.confidences],
        clipped_high=(counts["high"] > 0).tolist(),
        clipped_low=(counts["low"] > 0).tolist(),
        measurement=measurement,
    )
