"""How far a backbone's output sample depends on its input: what chunked restoration must add around each chunk."""

from __future__ import annotations

import torch
from torch import nn


def reach(backbone: nn.Module, channels: int, probe: int = 1 << 16) -> int:
    """Samples each side of an output sample that its input reaches: the backbone's own ``receptive_field`` where it
    declares one (one whose output on reliable samples is exactly zero, so a probe there sees nothing), else the
    farthest extent of the gradient of the centre output over a batch of clipped random probes ``(8, 2*channels,
    probe)`` at eight loudnesses (one probe can miss samples that reach only through units it leaves inactive), drawn
    from a fixed seed so that one backbone always gets one answer; 4096 samples long first, doubled up to ``probe``
    while the gradient reaches half-way from the centre to an end. Finite for convolutional backbones; the whole
    probe for recurrent or attention bottlenecks."""
    declared = getattr(backbone, "receptive_field", None)
    if declared is not None:
        return int(declared)
    device = next(backbone.parameters(), torch.empty(0)).device
    length = min(probe, 1 << 12)
    while True:  # a short probe first, longer while the gradient reaches near its ends
        found = _probe(backbone, channels, length, device)
        if found is None or found < length // 4 or length >= probe:
            return found or 0
        length = min(2 * length, probe)


def _probe(backbone: nn.Module, channels: int, length: int, device: torch.device) -> int | None:
    """The gradient's extent on one batch of probes of ``length`` samples; None for an output without a gradient."""
    noise = torch.randn(8, channels, length, generator=torch.Generator().manual_seed(0))
    y = (noise * torch.logspace(-1, 0.5, 8)[:, None, None]).to(device).clamp(-1, 1)
    signed = (y >= 1).to(y) - (y <= -1).to(y)
    inp = torch.cat([y, signed], dim=1).requires_grad_()
    with torch.enable_grad():
        centre = backbone(inp)[:, :, length // 2].sum()
        if not centre.requires_grad:  # an output that depends on no input through a gradient (a fixed correction)
            return None
        centre.backward()
    touched = inp.grad.abs().sum((0, 1)).nonzero()
    return int(max(length // 2 - touched.min(), touched.max() - length // 2)) if len(touched) else 0
