"""Find the clip level of a recording from the signal itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

MIN_PLATEAUS = 3  # separate runs at the extreme value before a polarity counts as clipped
RELATIVE_TOLERANCE = 1e-5  # float rounding around the clip level (16-bit steps are 3e-5 at full scale)


@dataclass(frozen=True)
class ClipLevel:
    """Per-channel thresholds ``(channels, 1)`` and whether each polarity was found clipped.

    For a polarity that is not clipped the threshold lies just beyond the signal's extreme, so no
    sample counts as clipped there and the clipping scale stays finite."""

    high: Tensor
    low: Tensor
    clipped_high: Tensor
    clipped_low: Tensor

    @property
    def any(self) -> bool:
        return bool(self.clipped_high.any() or self.clipped_low.any())


def detect_clip_level(y: Tensor, min_plateaus: int = MIN_PLATEAUS, tolerance: float = RELATIVE_TOLERANCE) -> ClipLevel:
    """Saturation levels of ``y`` ``(channels, time)``, per channel and polarity.

    A polarity is clipped when its extreme value (within ``tolerance`` relative, which absorbs float
    rounding; integer formats hit the level exactly) is held for two or more consecutive samples in
    at least ``min_plateaus`` separate places: a clipped recording flattens many peaks at one level.
    The threshold is the lowest value counted as at the extreme. Known blind spots: a pure tone
    coarsely quantised can look clipped, and clipping followed by lossy coding or filtering (whose
    ripple breaks the plateaus) can look unclipped; pass the level by hand then.
    """
    dtype = y.dtype if y.is_floating_point() else torch.float32
    return detect_clip_level_blocks(lambda: [y], min_plateaus, tolerance, dtype)


def detect_clip_level_blocks(
    blocks: Callable[[], Iterable[Tensor]],
    min_plateaus: int = MIN_PLATEAUS,
    tolerance: float = RELATIVE_TOLERANCE,
    dtype: torch.dtype = torch.float32,
) -> ClipLevel:
    """:func:`detect_clip_level` over a signal given as consecutive blocks ``(channels, time)``;
    ``blocks()`` must yield them afresh on each call (it is read twice), so memory stays bounded."""
    top = bottom = None
    for block in blocks():
        top = block.amax(-1).double() if top is None else torch.maximum(top, block.amax(-1).double())
        bottom = block.amin(-1).double() if bottom is None else torch.minimum(bottom, block.amin(-1).double())
    peaks = {"high": top, "low": -bottom}
    # at or beyond the band's edge counts as at the extreme; compared in the block's own float type
    edges = {name: peak - tolerance * peak.abs() for name, peak in peaks.items()}
    state = {
        name: {"runs": torch.zeros_like(top, dtype=torch.long), "level": torch.full_like(top, torch.inf),
               "near": torch.zeros_like(top, dtype=torch.bool), "pair": torch.zeros_like(top, dtype=torch.bool)}
        for name in peaks
    }  # fmt: skip
    for block in blocks():
        if not block.is_floating_point():
            block = block.to(dtype)
        for name in peaks:
            edge, st = edges[name].to(block.dtype)[:, None], state[name]
            if name == "high":
                near = block >= edge
                level = block.masked_fill(~near, torch.inf).amin(-1).double()
            else:
                near = block <= -edge
                level = -block.masked_fill(~near, -torch.inf).amax(-1).double()
            st["level"] = torch.minimum(st["level"], level)
            extended = torch.cat([st["near"][:, None], near], -1)  # runs continue across blocks
            pair = extended[:, 1:] & extended[:, :-1]
            before = torch.cat([st["pair"][:, None], pair[:, :-1]], -1)
            st["runs"] += (pair & ~before).sum(-1)
            st["near"], st["pair"] = near[:, -1], pair[:, -1]
    out = {}
    for name, sign in (("high", 1.0), ("low", -1.0)):
        peak, st = peaks[name], state[name]
        clipped = (st["runs"] >= min_plateaus) & (peak > 0)
        beyond = peak.clamp(min=0) * (1 + 1e-3) + 1e-9  # just past the extreme: nothing counts as clipped
        out[name] = (sign * torch.where(clipped, st["level"], beyond))[:, None]
        out[f"clipped_{name}"] = clipped
    # an unclipped polarity takes at least the other's magnitude, keeping the scale representative
    high = torch.where(out["clipped_high"][:, None], out["high"], torch.maximum(out["high"], -out["low"]))
    low = torch.where(out["clipped_low"][:, None], out["low"], torch.minimum(out["low"], -out["high"]))
    return ClipLevel(high.to(dtype), low.to(dtype), out["clipped_high"], out["clipped_low"])
