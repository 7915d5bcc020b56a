"""Group actions used by equivariant imaging: amplitude scaling :math:`x \\mapsto g x`."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from declip.errors import ConfigError

DISTRIBUTIONS = ("uniform", "log-uniform")


class AmplitudeScale:
    """Random gains ``g`` on ``[g_min, g_max]``, drawn uniformly or log-uniformly, optionally with a
    random sign. ``sample`` then ``apply``, so a test can fix the gains.

    Args:
        g_min: smallest gain (> 0).
        g_max: largest gain (>= g_min).
        distribution: ``"uniform"`` or ``"log-uniform"``.
        sign_flip: also multiply by -1 with probability 1/2.
    """

    def __init__(
        self, g_min: float = 0.5, g_max: float = 2.0, distribution: str = "log-uniform", sign_flip: bool = False
    ) -> None:
        if not 0 < g_min <= g_max:
            raise ConfigError(f"EI gains need 0 < g_min <= g_max; got g_min={g_min}, g_max={g_max}")
        if distribution not in DISTRIBUTIONS:
            raise ConfigError(f"EI gain distribution must be one of {DISTRIBUTIONS}; got {distribution!r}")
        self.g_min, self.g_max = g_min, g_max
        self.distribution, self.sign_flip = distribution, sign_flip

    def sample(
        self, batch: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Tensor:
        """Gains of shape ``(batch, 1, 1)``."""
        u = torch.rand(batch, 1, 1, device=device, generator=generator)
        if self.g_min == self.g_max:
            g = torch.full_like(u, self.g_min)
        elif self.distribution == "uniform":
            g = self.g_min + (self.g_max - self.g_min) * u
        else:
            g = torch.exp(math.log(self.g_min) + (math.log(self.g_max) - math.log(self.g_min)) * u)
        if self.sign_flip:
            sign = torch.randint(0, 2, (batch, 1, 1), device=device, generator=generator) * 2 - 1
            g = g * sign
        return g

    @staticmethod
    def apply(x: Tensor, g: Tensor) -> Tensor:
        return g.to(x) * x
