"""The model as losses and users see it: ``f(y, physics) -> x_hat`` around any backbone."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from declip.physics import Clipping


class Declipper(nn.Module):
    """Wrap a backbone that maps ``(batch, 2*channels, time) -> (batch, channels, time)``.

    The backbone sees ``y / s`` and the signed clip mask (+1 high, -1 low, 0 reliable), where ``s``
    is the clipping scale; its output ``z`` is a correction in those units:

    - ``consistent=False``: :math:`\\hat x = y + s z` (a skip connection around the backbone);
    - ``consistent=True``: :math:`\\hat x = y + s\\,\\mathrm{sign}\\cdot\\mathrm{softplus}(z)` on clipped
      samples and ``y`` elsewhere, so every estimate is consistent by construction.

    Either way, rescaling ``y`` and the thresholds by ``a > 0`` rescales ``x_hat`` by ``a`` exactly.
    """

    def __init__(self, backbone: nn.Module, consistent: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.consistent = consistent

    def forward(self, y: Tensor, physics: Clipping) -> Tensor:
        scale = physics.scale.to(y)
        signed = physics.masks(y).signed.to(y)
        z = self.backbone(torch.cat([y / scale, signed], dim=1))
        if self.consistent:
            return y + scale * signed * softplus(z)
        return y + scale * z
