"""Supervised loss against the clean signal: the upper bound that self-supervised training chases."""

from __future__ import annotations

import torch
from torch import Tensor

from declip.config import capture_init
from declip.errors import ConfigError
from declip.losses.base import Loss, Reconstructor, scaled_square_error
from declip.physics import Clipping

METRICS = ("mse", "l1", "sdr")


class SupervisedLoss(Loss):
    """:math:`\\|x - \\hat x\\|^2` (``mse``), :math:`\\|x - \\hat x\\|_1` (``l1``), or negative SDR in
    dB (``sdr``: :math:`10\\log_{10}(\\|x - \\hat x\\|^2 / \\|x\\|^2)`, averaged over examples)."""

    name = "supervised"
    requires_clean = True

    @capture_init
    def __init__(self, metric: str = "mse", weight: float = 1.0) -> None:
        super().__init__(weight)
        if metric not in METRICS:
            raise ConfigError(f"supervised metric must be one of {METRICS}; got {metric!r}")
        self.metric = metric

    def forward(
        self, x_net: Tensor, y: Tensor, physics: Clipping, model: Reconstructor, x: Tensor | None = None
    ) -> Tensor:
        if x is None:
            raise ConfigError(
                "SupervisedLoss needs clean targets but the data gives none: use MCLoss/EILoss for clipped-only data"
            )
        if self.metric == "mse":
            value = scaled_square_error(x_net, x, physics)
        elif self.metric == "l1":
            value = ((x_net - x) / physics.scale.to(x)).abs().mean()
        else:
            err = (x - x_net).pow(2).flatten(1).sum(1)
            energy = x.pow(2).flatten(1).sum(1)
            value = (10 * torch.log10((err + 1e-10) / (energy + 1e-10))).mean()
        return self.weight * value
