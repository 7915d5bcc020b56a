"""The detection result the page shows: clip level, share of clipped samples and kind, per channel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from declip.errors import ConfigError
from declip.inference.detect import detect_clip_level_blocks
from declip.inference.reading import read_blocks
from declip.physics import Clipping

BLOCK_FRAMES = 1 << 20
SYMMETRIC = 0.01  # levels whose magnitudes differ by less than this share count as one symmetric level


@dataclass(frozen=True)
class ClippingSummary:
    """Per channel: the positive and negative levels, the share of samples at or beyond them and the kind
    (``symmetric``, ``asymmetric``, ``positive peaks only``, ``negative peaks only``, ``not clipped``)."""

    high: list[float]
    low: list[float]
    share: list[float]
    kind: list[str]
    clipped_high: list[bool]
    clipped_low: list[bool]
    given: bool  # the level was given, not detected

    @property
    def clipped(self) -> bool:
        return any(share > 0 for share in self.share)

    def markdown(self) -> str:
        source = "given" if self.given else "detected"
        rows = [f"| channel | level ({source}) | clipped | kind |", "|---|---|---|---|"]
        for channel, (high, low, share, kind) in enumerate(zip(self.high, self.low, self.share, self.kind)):
            positive = f"+{high:.4f}" if self.clipped_high[channel] else "–"
            negative = f"{low:.4f}" if self.clipped_low[channel] else "–"
            rows.append(f"| {channel + 1} | {positive} / {negative} | {100 * share:.2f} % | {kind} |")
        return "\n".join(rows)


def _kind(high: float, low: float, clipped_high: bool, clipped_low: bool) -> str:
    if clipped_high and clipped_low:
        return "symmetric" if abs(high + low) <= SYMMETRIC * max(high, -low) else "asymmetric"
    if clipped_high:
        return "positive peaks only"
    if clipped_low:
        return "negative peaks only"
    return "not clipped"


def summarise_clipping(path: str | Path, threshold: float | None = None) -> ClippingSummary:
    """Detect the clip level of the audio file ``path`` as ``declip restore`` does (or take ``threshold``,
    symmetric) and count the samples it marks clipped. Raises ``ConfigError`` on unreadable audio."""

    def blocks():
        for data in read_blocks(path, BLOCK_FRAMES):
            yield torch.from_numpy(np.ascontiguousarray(data.T))

    try:
        channels = sf.info(path).channels
        if threshold is None:
            level = detect_clip_level_blocks(blocks)
            physics = Clipping(level.high, level.low)
        else:
            if threshold <= 0:
                raise ConfigError(f"clip level must be positive; got {threshold}")
            physics = Clipping(torch.full((channels, 1), float(threshold) * (1 - 1e-5)))
        counts = {"high": torch.zeros(channels), "low": torch.zeros(channels)}
        frames = 0
        for block in blocks():
            masks = physics.masks(block)
            counts["high"] += masks.high.sum(-1)
            counts["low"] += masks.low.sum(-1)
            frames += block.shape[-1]
    except (sf.LibsndfileError, RuntimeError) as error:
        raise ConfigError(f"unreadable audio ({error})") from error
    except ValueError as error:  # no samples
        raise ConfigError("the file holds no samples") from error
    if frames == 0:
        raise ConfigError("the file holds no samples")
    high, low = physics.high[:, 0].tolist(), physics.low[:, 0].tolist()
    clipped_high, clipped_low = (counts["high"] > 0).tolist(), (counts["low"] > 0).tolist()
    return ClippingSummary(
        high=high,
        low=low,
        share=((counts["high"] + counts["low"]) / frames).tolist(),
        kind=[_kind(*values) for values in zip(high, low, clipped_high, clipped_low)],
        clipped_high=clipped_high,
        clipped_low=clipped_low,
        given=threshold is not None,
    )
