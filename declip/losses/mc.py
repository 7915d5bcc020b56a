"""Measurement consistency: the estimate must explain the clipped measurement."""

from __future__ import annotations

import torch
from torch import Tensor

from declip.losses.base import Loss, Reconstructor, scaled_square_error
from declip.physics import Clipping


class MCLoss(Loss):
    """Consistency with the clipping constraints, zero for every consistent estimate:

    .. math:: \\|M_r(\\hat x - y)\\|^2 + \\|M_+ (\\theta_+ - \\hat x)_+\\|^2 + \\|M_- (\\hat x - \\theta_-)_+\\|^2

    Reliable samples must equal ``y``; clipped samples are penalised only on the wrong side of the
    threshold, so an estimate beyond it still gets a gradient everywhere it is wrong.
    """

    name = "mc"

    def forward(
        self, x_net: Tensor, y: Tensor, physics: Clipping, model: Reconstructor, x: Tensor | None = None
    ) -> Tensor:
        return self.weight * consistency_error(x_net, y, physics)


def consistency_violation(x_net: Tensor, y: Tensor, physics: Clipping) -> Tensor:
    """How far each sample of ``x_net`` is from the consistent set of ``y``: its difference from ``y`` on
    reliable samples, its shortfall below the level on clipped ones (zero beyond it)."""
    m = physics.masks(y)
    high, low = physics.high.to(x_net), physics.low.to(x_net)
    violation = torch.where(m.reliable, x_net - y, torch.zeros_like(x_net))
    return violation + m.high * torch.relu(high - x_net) - m.low * torch.relu(x_net - low)


def consistency_error(x_net: Tensor, y: Tensor, physics: Clipping) -> Tensor:
    """The unweighted :class:`MCLoss` of ``x_net`` for the measurement ``y``."""
    violation = consistency_violation(x_net, y, physics)
    return scaled_square_error(violation, torch.zeros_like(violation), physics)


class NaiveMCLoss(Loss):
    """:math:`\\|y - \\eta(\\hat x)\\|^2`: consistent in value but with zero gradient wherever the
    estimate lies beyond a threshold (the clamp is flat there). Kept for the ablation."""

    name = "naive_mc"

    def forward(
        self, x_net: Tensor, y: Tensor, physics: Clipping, model: Reconstructor, x: Tensor | None = None
    ) -> Tensor:
        return self.weight * scaled_square_error(physics(x_net), y, physics)
