"""Find the clip level of a recording from the signal itself."""

from __future__ import annotations

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


def _plateau_runs(hit: Tensor) -> Tensor:
    """Number of separate runs of two or more True samples along the last dimension, ``(channels,)``.
    Single samples do not count: a periodic tone touches its peak once per period without clipping."""
    pair = hit[..., 1:] & hit[..., :-1]
    starts = pair & ~torch.nn.functional.pad(pair, (1, 0))[..., :-1]
    return starts.sum(-1)


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
    y = y.double()
    out = {}
    for name, sign in (("high", 1.0), ("low", -1.0)):
        v = sign * y
        peak = v.amax(-1, keepdim=True)
        near = v >= peak - tolerance * peak.abs()
        clipped = (_plateau_runs(near) >= min_plateaus) & (peak[:, 0] > 0)
        level = torch.where(near, v, torch.full_like(v, torch.inf)).amin(-1, keepdim=True)
        beyond = peak.clamp(min=0) * (1 + 1e-3) + 1e-9  # just past the extreme: nothing counts as clipped
        out[name] = sign * torch.where(clipped[:, None], level, beyond)
        out[f"clipped_{name}"] = clipped
    # an unclipped polarity takes at least the other's magnitude, keeping the scale representative
    high = torch.where(out["clipped_high"][:, None], out["high"], torch.maximum(out["high"], -out["low"]))
    low = torch.where(out["clipped_low"][:, None], out["low"], torch.minimum(out["low"], -out["high"]))
    return ClipLevel(high.to(dtype), low.to(dtype), out["clipped_high"], out["clipped_low"])
