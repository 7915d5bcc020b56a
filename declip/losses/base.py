"""The call shape every declip loss shares: ``loss(x_net, y, physics, model, x=None)``."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from declip.config import capture_init
from declip.physics import Clipping

Reconstructor = Callable[[Tensor, Clipping], Tensor]
"""A model as losses see it: ``model(y, physics) -> x_hat``, both ``(batch, channels, time)``."""


class Loss(nn.Module):
    """Base class. ``weight`` multiplies the value; ``requires_clean`` marks losses that need ``x``;
    ``uses_estimate`` is false for losses that ignore ``x_net`` (the network's output for ``y``),
    which is then not computed in training when no loss uses it.

    Values are measured in units of the clipping scale (signals divided by
    :meth:`Clipping.scale`), so loud and quiet examples weigh the same.
    """

    name: str = "loss"
    requires_clean: bool = False
    uses_estimate: bool = True

    @capture_init
    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(
        self, x_net: Tensor, y: Tensor, physics: Clipping, model: Reconstructor, x: Tensor | None = None
    ) -> Tensor:
        raise NotImplementedError


def scaled_square_error(a: Tensor, b: Tensor, physics: Clipping) -> Tensor:
    """Mean of ``((a - b) / scale)**2`` over every element."""
    return ((a - b) / physics.scale.to(a)).pow(2).mean()
