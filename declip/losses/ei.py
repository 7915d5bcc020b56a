"""Equivariant imaging for clipping: the distribution of music is roughly amplitude-invariant."""

from __future__ import annotations

import torch
from torch import Tensor

from declip.config import capture_init
from declip.losses.base import Loss, Reconstructor, scaled_square_error
from declip.physics import Clipping
from declip.transforms import AmplitudeScale


class EILoss(Loss):
    """:math:`\\|g\\hat x - f(\\eta(g\\hat x))\\|^2` with a random gain ``g`` per example and the same
    thresholds: the network must restore a rescaled copy of its own estimate, re-clipped.

    Args:
        weight: λ in MC + λ·EI.
        g_min, g_max, distribution, sign_flip: the gain law, see :class:`AmplitudeScale`.
        detach_target: compute :math:`g\\hat x` without gradient, so the gradient flows through the
            second pass of the network only. On by default: with the gradient through the target too,
            training collapses to the trivial :math:`\\hat x = y` (see docs/results.md).
        clipped_only: project the estimate onto the consistent set before rescaling it, and score
            the second pass on the clipped samples of its input only. The reliable samples, which
            inference copies from the input anyway, then exert no pull toward :math:`\\hat x = y`
            (an experiment for adaptation, see docs/results.md).
    """

    name = "ei"

    @capture_init
    def __init__(
        self,
        weight: float = 1.0,
        g_min: float = 0.5,
        g_max: float = 2.0,
        distribution: str = "log-uniform",
        sign_flip: bool = False,
        detach_target: bool = True,
        clipped_only: bool = False,
    ) -> None:
        super().__init__(weight)
        self.transform = AmplitudeScale(g_min, g_max, distribution, sign_flip)
        self.detach_target = detach_target
        self.clipped_only = clipped_only

    def forward(
        self, x_net: Tensor, y: Tensor, physics: Clipping, model: Reconstructor, x: Tensor | None = None
    ) -> Tensor:
        g = self.transform.sample(x_net.shape[0], device=x_net.device)
        if self.clipped_only:
            x_net = physics.project(x_net, y)
        x2 = self.transform.apply(x_net, g)
        if self.detach_target:
            x2 = x2.detach()
        y2 = physics(x2)
        x3 = model(y2, physics)
        if self.clipped_only:
            x3 = torch.where(physics.masks(y2).clipped, x3, x2)
        return self.weight * scaled_square_error(x3, x2, physics)
