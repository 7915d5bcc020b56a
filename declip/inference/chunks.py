"""Restore a signal of any length in chunks that give the same result as one pass."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from declip.models import Declipper
from declip.physics import Clipping


def receptive_field(model: Declipper, channels: int, probe: int = 1 << 16) -> int:
    """How far (in samples, each side) an output sample depends on the input: the extent of the
    gradient of the centre output. Finite for convolutional backbones; the whole probe for
    recurrent or attention bottlenecks (then chunked and one-pass results differ slightly)."""
    device = next(model.parameters(), torch.empty(0)).device
    y = (torch.randn(1, channels, probe, device=device) * 0.3).clamp(-0.5, 0.5).requires_grad_()
    physics = Clipping(torch.tensor(0.5, device=device))
    with torch.enable_grad():
        model(y, physics)[0, :, probe // 2].sum().backward()
    reach = y.grad.abs().sum(1)[0].nonzero()
    return int(max(probe // 2 - reach.min(), reach.max() - probe // 2)) if len(reach) else 0


SKIP_MARGIN = 64


def chunk_plan(length: int, chunk: int, context: int, hop: int) -> list[tuple[int, int, int, int]]:
    """``(start, stop, core_start, core_stop)`` windows: cores of ``chunk`` samples tile ``[0, length)``,
    each window adds ``context`` on both sides (cut at the signal's edges); all are multiples of
    ``hop`` so that strided networks see every window on the same grid as the whole signal."""
    chunk = max(hop, math.ceil(chunk / hop) * hop)
    context = math.ceil(context / hop) * hop
    plan = []
    for core_start in range(0, length, chunk):
        core_stop = min(core_start + chunk, length)
        plan.append((max(core_start - context, 0), min(core_stop + context, length), core_start, core_stop))
    return plan


@torch.inference_mode()
def restore_chunked(
    model: Declipper,
    y: Tensor,
    physics: Clipping,
    chunk: int,
    context: int,
    hop: int = 1,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    skip_unclipped: bool = False,
) -> Tensor:
    """``model(y, physics)`` for ``y`` ``(items, channels, time)`` of any length, computed on windows
    of ``chunk + 2*context`` samples at most. When ``context`` covers the model's receptive field
    the result equals one pass up to float rounding. Windows of equal length run in batches of
    ``batch_size``; thresholds of ``physics`` are per item (``(items, channels, 1)`` or broadcastable).
    ``progress(done, total)`` is called after each batch, counting windows.

    With ``skip_unclipped`` windows whose core holds no clipped sample (within ``SKIP_MARGIN``) are
    not computed: their core is ``y`` itself, which is what the projection onto the clipping set
    gives there anyway.
    """
    items, _, length = y.shape
    high = physics.high.expand(items, y.shape[1], 1) if physics.high.dim() == 3 else physics.high
    low = physics.low.expand(items, y.shape[1], 1) if physics.low.dim() == 3 else physics.low
    out = y.clone() if skip_unclipped else torch.empty_like(y)
    clipped = None
    if skip_unclipped:  # widened a little: resampling to the model's rate moves plateau edges
        mask = Clipping(high, low).masks(y).clipped.any(1, keepdim=True).float()
        clipped = torch.nn.functional.max_pool1d(mask, 2 * SKIP_MARGIN + 1, 1, SKIP_MARGIN)[:, 0] > 0
    plan = chunk_plan(length, chunk, context, hop)
    by_length: dict[int, list[tuple[int, int, int, int]]] = {}
    for window in plan:
        by_length.setdefault(window[1] - window[0], []).append(window)
    done, total = 0, len(plan) * items
    for windows in by_length.values():
        jobs = [(item, w) for w in windows for item in range(items)]
        if clipped is not None:
            done += len(jobs)
            jobs = [(item, w) for item, w in jobs if clipped[item, w[2] : w[3]].any()]
            done -= len(jobs)
        for first in range(0, len(jobs), batch_size):
            batch = jobs[first : first + batch_size]
            device = next(model.parameters(), torch.empty(0)).device
            inp = torch.stack([y[item, :, w[0] : w[1]] for item, w in batch]).to(device)
            idx = torch.tensor([item for item, _ in batch])
            physics_batch = Clipping(_pick(high, idx).to(device), _pick(low, idx).to(device))
            restored = model(inp, physics_batch).to(out.device)
            for row, (item, (start, _, core_start, core_stop)) in enumerate(batch):
                out[item, :, core_start:core_stop] = restored[row, :, core_start - start : core_stop - start]
            done += len(batch)
            if progress is not None:
                progress(done, total)
    return out


def _pick(threshold: Tensor, idx: Tensor) -> Tensor:
    return threshold[idx] if threshold.dim() == 3 else threshold
