"""How a data set picks the clip level of each example."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from declip.errors import ConfigError
from declip.physics import sdr, threshold_for_sdr


class ClipLevels:
    """One of three rules: input SDR uniform in ``input_sdr_range`` (dB), an absolute threshold
    log-uniform in ``threshold_range``, or input SDRs cycled from ``fixed_sdrs`` (item ``i`` gets
    ``fixed_sdrs[i % len]``, for validation and test sets)."""

    def __init__(
        self,
        input_sdr_range: Sequence[float] | None = None,
        threshold_range: Sequence[float] | None = None,
        fixed_sdrs: Sequence[float] | None = None,
    ) -> None:
        given = [r for r in (input_sdr_range, threshold_range, fixed_sdrs) if r is not None]
        if len(given) == 0:
            raise ConfigError("give input_sdr_range, threshold_range or fixed levels for clipping")
        if fixed_sdrs is not None:
            fixed_sdrs = [float(v) for v in fixed_sdrs]
            if not fixed_sdrs or min(fixed_sdrs) <= 0:
                raise ConfigError(f"clip levels must be positive input SDRs in dB; got {fixed_sdrs}")
            self.fixed_sdrs, self.input_sdr_range, self.threshold_range = fixed_sdrs, None, None
            return
        if threshold_range is not None:
            self._check_range("threshold_range", threshold_range)
            self.threshold_range, self.input_sdr_range = tuple(threshold_range), None
        else:
            self._check_range("input_sdr_range", input_sdr_range)
            self.input_sdr_range, self.threshold_range = tuple(input_sdr_range), None
        self.fixed_sdrs = None

    @staticmethod
    def _check_range(name: str, bounds: Sequence[float]) -> None:
        if len(bounds) != 2 or not 0 < bounds[0] <= bounds[1]:
            raise ConfigError(f"{name} must be [low, high] with 0 < low <= high; got {list(bounds)}")

    def clip(self, x: Tensor, index: int, generator: torch.Generator) -> dict[str, Tensor]:
        """Clip one clean example ``(channels, time)``; returns the item dict (``y``, ``x``, ``high``,
        ``low``, ``input_sdr``)."""
        if self.threshold_range is not None:
            low, high = (math.log(v) for v in self.threshold_range)
            theta = torch.exp(low + (high - low) * torch.rand(1, generator=generator)).to(x.dtype)
        else:
            if self.fixed_sdrs is not None:
                target = self.fixed_sdrs[index % len(self.fixed_sdrs)]
            else:
                low, high = self.input_sdr_range
                target = low + (high - low) * float(torch.rand(1, generator=generator))
            theta = threshold_for_sdr(x[None], target)
        theta = theta.reshape(1, 1)
        y = torch.clamp(x, -theta, theta)
        return {"y": y, "x": x, "high": theta, "low": -theta, "input_sdr": sdr(x[None], y[None])[0]}
