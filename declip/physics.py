"""The clipping forward model :math:`y = \\eta(x) = \\min(\\max(x, \\theta_-), \\theta_+)`.

Signals are tensors of shape ``(batch, channels, time)``; thresholds are tensors that
broadcast against them (``(batch, 1, 1)`` for one level per example, ``(batch, channels, 1)``
for one per channel), or plain floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from declip.errors import ConfigError

# float rounding around a clip level: samples within this (relative) of the level count as at it
# (16-bit steps are 3e-5 at full scale)
LEVEL_TOLERANCE = 1e-5


@dataclass(frozen=True)
class ClipMasks:
    """Boolean masks of a clipped signal: ``reliable | high | low`` covers every sample once."""

    high: Tensor
    low: Tensor

    @property
    def clipped(self) -> Tensor:
        return self.high | self.low

    @property
    def reliable(self) -> Tensor:
        return ~self.clipped

    @property
    def signed(self) -> Tensor:
        """+1 where clipped high, -1 where clipped low, 0 on reliable samples (same dtype as float)."""
        return self.high.float() - self.low.float()


def _as_tensor(value: Tensor | float) -> Tensor:
    return value if isinstance(value, Tensor) else torch.tensor(float(value))


class Clipping:
    """Hard clipping at ``low < 0 < high``; ``low`` defaults to ``-high`` (symmetric clipping).

    Args:
        high: upper threshold :math:`\\theta_+`, a float or a tensor broadcastable to the signal.
        low: lower threshold :math:`\\theta_-` (negative); ``None`` means ``-high``.
    """

    def __init__(self, high: Tensor | float, low: Tensor | float | None = None) -> None:
        self.high = _as_tensor(high)
        self.low = -self.high if low is None else _as_tensor(low)
        if not bool((self.high > 0).all()):
            raise ConfigError("clipping threshold must be positive; got a value <= 0")
        if not bool((self.low < 0).all()):
            raise ConfigError("lower clipping threshold must be negative; got a value >= 0")

    @classmethod
    def at_level(cls, threshold: float, channels: int) -> Clipping:
        """Symmetric clipping at a level given by hand, for ``channels`` channels: samples within
        :data:`LEVEL_TOLERANCE` (relative) of it count as at it (integer formats store 0.3 as 0.29999...)."""
        return cls(torch.full((channels, 1), float(threshold) * (1 - LEVEL_TOLERANCE)))

    def __call__(self, x: Tensor) -> Tensor:
        """Clip ``x``: :math:`\\eta(x)`, same shape as ``x``."""
        return torch.clamp(x, min=self.low.to(x), max=self.high.to(x))

    @property
    def scale(self) -> Tensor:
        """Half the clipping range, :math:`(\\theta_+ - \\theta_-)/2`; equals θ when symmetric."""
        return (self.high - self.low) / 2

    def masks(self, y: Tensor) -> ClipMasks:
        """Masks of the measurement ``y``: samples at or beyond a threshold count as clipped."""
        high = y >= self.high.to(y)
        low = y <= self.low.to(y)
        return ClipMasks(high=high, low=low)

    def project(self, x: Tensor, y: Tensor, masks: ClipMasks | None = None) -> Tensor:
        """Nearest signal consistent with ``y``: reliable samples := y, clipped ones pushed to at least
        their own value in ``y`` (so at or beyond the threshold) with its sign: a sample counted clipped
        by a detection tolerance a little inside its plateau never moves below its input. Idempotent;
        keeps reliable samples bit-exact. ``masks``: ``self.masks(y)`` when the caller has it already."""
        m = self.masks(y) if masks is None else masks
        out = torch.where(m.clipped, x, y)
        out = torch.where(m.high, torch.maximum(out, y), out)  # y >= high where m.high
        return torch.where(m.low, torch.minimum(out, y), out)

    @property
    def context(self) -> int:
        """Samples each side of a sample that decide its mask (0: each sample's own value)."""
        return 0

    def network_input(self, y: Tensor, masks: ClipMasks | None = None) -> Tensor:
        """``y`` as a restoration network should see it: a hard-clipped measurement is already that."""
        return y

    def to(self, device: torch.device | str) -> Clipping:
        return Clipping(self.high.to(device), self.low.to(device))


def sdr(reference: Tensor, estimate: Tensor, mask: Tensor | None = None) -> Tensor:
    """Plain signal-to-distortion ratio :math:`20\\log_{10}(\\|x\\| / \\|x - \\hat x\\|)` in dB.

    Reduces over every dimension but the first: ``(batch, ...) -> (batch,)``. With ``mask`` only the
    selected samples count; an example with no selected sample gives NaN. A perfect estimate gives +inf.
    """
    ref, est = reference.double(), estimate.double()
    if mask is not None:
        ref, est = ref * mask, est * mask
    dims = tuple(range(1, ref.dim()))
    signal = ref.pow(2).sum(dims)
    error = (ref - est).pow(2).sum(dims)
    out = 10 * torch.log10(signal / error)
    if mask is not None:
        out = torch.where(mask.sum(dims) > 0, out, torch.nan)
    return out.to(reference.dtype if reference.is_floating_point() else torch.float32)


def threshold_for_sdr(x: Tensor, target_db: Tensor | float, iterations: int = 60) -> Tensor:
    """Symmetric threshold θ such that ``sdr(x, clip(x, -θ, θ))`` equals ``target_db``.

    Batched bisection on ``(0, max|x|]`` in float64 (SDR grows monotonically with θ), per example:
    ``x`` is ``(batch, ...)``, ``target_db`` a float or ``(batch,)``; returns ``(batch,)``. Sixty
    halvings put θ within ``max|x| * 2**-60``, far inside 0.01 dB. Targets must be positive.
    """
    xd = x.double().flatten(1)
    target = torch.as_tensor(target_db, dtype=torch.float64, device=x.device).expand(xd.shape[0])
    if not bool((target > 0).all()):
        raise ConfigError("target input SDR must be positive (dB); clipping at 0 dB would erase the signal")
    peak = xd.abs().amax(1)
    if not bool((peak > 0).all()):
        raise ValueError("cannot clip a silent signal to a target SDR: every sample is zero")
    energy = xd.pow(2).sum(1)
    lo, hi = torch.zeros_like(peak), peak.clone()
    for _ in range(iterations):
        mid = (lo + hi) / 2
        err = (xd - torch.clamp(xd, -mid[:, None], mid[:, None])).pow(2).sum(1)
        too_low = 10 * torch.log10(energy / err) < target  # θ too small: too much clipping
        lo = torch.where(too_low, mid, lo)
        hi = torch.where(too_low, hi, mid)
    return ((lo + hi) / 2).to(x.dtype)
