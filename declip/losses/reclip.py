"""Re-clipping: clip the measurement harder and learn to give back the samples that were reliable."""

from __future__ import annotations

from torch import Tensor

from declip.config import capture_init
from declip.errors import ConfigError
from declip.losses.base import Loss, Reconstructor
from declip.losses.mc import consistency_error
from declip.physics import Clipping
from declip.transforms import AmplitudeScale


class ReclipLoss(Loss):
    """:math:`MC(f(\\eta_{\\theta/g}(y)); y, \\theta)` with a random ``g >= 1`` per example.

    The measurement ``y`` is clipped again at thresholds divided by ``g``; the network restores that
    and is scored against ``y`` itself with the consistency loss of :class:`MCLoss`. Samples between
    :math:`\\theta/g` and :math:`\\theta` are reliable in ``y``: they are exact targets taken from the
    recording, not from the network's own estimate (as in :class:`EILoss`). Samples clipped in ``y``
    are only asked to lie beyond :math:`\\theta`. No clean signal is needed.

    Args:
        weight: the factor on this loss.
        g_min, g_max, distribution: the law of ``g`` (both at least 1), see :class:`AmplitudeScale`.
    """

    name = "reclip"
    uses_estimate = False  # it runs the network on the harder clipping only

    @capture_init
    def __init__(
        self, weight: float = 1.0, g_min: float = 1.0, g_max: float = 2.0, distribution: str = "log-uniform"
    ) -> None:
        super().__init__(weight)
        if g_min < 1:
            raise ConfigError(f"ReclipLoss clips harder, so g_min must be at least 1; got {g_min}")
        self.transform = AmplitudeScale(g_min, g_max, distribution)

    def forward(
        self, x_net: Tensor, y: Tensor, physics: Clipping, model: Reconstructor, x: Tensor | None = None
    ) -> Tensor:
        g = self.transform.sample(y.shape[0], device=y.device).to(y)
        harder = Clipping(physics.high.to(y) / g, physics.low.to(y) / g)
        x2 = model(harder(y), harder)
        return self.weight * consistency_error(x2, y, physics)
