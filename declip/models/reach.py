"""How far a backbone's output sample depends on its input: what chunked restoration must add around each chunk."""

from __future__ import annotations

import torch
from torch import nn


def reach(backbone: nn.Module, channels: int, probe: int = 1 << 16) -> int:
    """Samples each side of an output sample that its input reaches: the backbone's own ``receptive_field`` where it
    declares one (one whose output on reliable samples is exactly zero, so a probe there sees nothing), else the
    extent of the gradient of the centre output on a clipped random probe ``(1, 2*channels, probe)``. Finite for
    convolutional backbones; the whole probe for recurrent or attention bottlenecks."""
    declared = getattr(backbone, "receptive_field", None)
    if declared is not None:
        return int(declared)
    device = next(backbone.parameters(), torch.empty(0)).device
    y = (torch.randn(1, channels, probe, device=device) * 0.6).clamp(-1, 1)
    signed = (y >= 1).to(y) - (y <= -1).to(y)
    inp = torch.cat([y, signed], dim=1).requires_grad_()
    with torch.enable_grad():
        centre = backbone(inp)[0, :, probe // 2].sum()
        if not centre.requires_grad:  # an output that depends on no input through a gradient (a fixed correction)
            return 0
        centre.backward()
    touched = inp.grad.abs().sum(1)[0].nonzero()
    return int(max(probe // 2 - touched.min(), touched.max() - probe // 2)) if len(touched) else 0
