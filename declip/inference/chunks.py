"""Restore a signal of any length in chunks that give the same result as one pass."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from declip.inference.precision import autocast
from declip.models import Declipper
from declip.models.reach import reach
from declip.physics import Clipping


def receptive_field(model: Declipper, channels: int, probe: int = 1 << 16) -> int:
    """How far (in samples, each side) an output sample depends on the input: its backbone's reach
    (:func:`declip.models.reach.reach`: declared, or probed by the gradient of the centre output). Finite for
    convolutional backbones; the whole probe for recurrent or attention bottlenecks (then chunked and one-pass
    results differ slightly)."""
    return reach(model.backbone, channels, probe)


SKIP_MARGIN = 64


def chunk_plan(
    length: int, chunk: int, context: int, hop: int, span: tuple[int, int] | None = None
) -> list[tuple[int, int, int, int]]:
    """``(start, stop, core_start, core_stop)`` windows: cores of ``chunk`` samples tile ``span``
    (default ``[0, length)``), each window adds at least ``context`` on both sides (cut at the
    signal's edges). Windows near an edge take more context on the other side instead, so that
    all but the last have one length (one compiled kernel shape, one batch). Starts and cores lie
    on the ``hop`` grid so that strided networks see every window as they see the whole signal."""
    chunk = max(hop, math.ceil(chunk / hop) * hop)
    context = math.ceil(context / hop) * hop
    window = chunk + 2 * context
    first, last = span if span is not None else (0, length)
    first, last = first // hop * hop, min(last, length)
    plan = []
    for core_start in range(first, last, chunk):
        core_stop = min(core_start + chunk, last)
        start = max(core_start - context, 0)
        stop = min(start + window, length)
        if stop - start < window:  # at the end: reach further back, on the grid
            start = max((stop - window) // hop * hop, 0)
        plan.append((start, stop, core_start, core_stop))
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
    precision: str = "fp32",
    span: tuple[int, int] | None = None,
) -> Tensor:
    """``model(y, physics)`` for ``y`` ``(items, channels, time)`` of any length, computed on windows
    of ``chunk + 2*context`` samples at most. When ``context`` covers the model's receptive field
    the result equals one pass up to float rounding. Windows of equal length run in batches of
    ``batch_size``; thresholds of ``physics`` are per item (``(items, channels, 1)`` or broadcastable).
    ``progress(done, total)`` is called after each batch, counting windows.

    With ``skip_unclipped`` windows whose core holds no clipped sample (within ``SKIP_MARGIN``) are
    not computed: their core is ``y`` itself, which is what the projection onto the clipping set
    gives there anyway. ``precision`` ``"bf16"`` runs the model under bfloat16 autocast. With
    ``span`` only the samples in ``[span[0], span[1])`` are computed (the others are ``y``).
    """
    items, _, length = y.shape
    high = physics.high.expand(items, y.shape[1], 1) if physics.high.dim() == 3 else physics.high
    low = physics.low.expand(items, y.shape[1], 1) if physics.low.dim() == 3 else physics.low
    out = y.clone() if skip_unclipped or span is not None else torch.empty_like(y)
    clipped = Clipping(high, low).masks(y).clipped.any(1) if skip_unclipped else None  # (items, time)
    plan = chunk_plan(length, chunk, context, hop, span)
    by_length: dict[int, list[tuple[int, int, int, int]]] = {}
    for window in plan:
        by_length.setdefault(window[1] - window[0], []).append(window)
    done, total = 0, len(plan) * items
    for windows in by_length.values():
        jobs = [(item, w) for w in windows for item in range(items)]
        if clipped is not None:  # widened a little: resampling to the model's rate moves plateau edges
            done += len(jobs)
            jobs = [(item, w) for item, w in jobs if _clipped_near(clipped[item], w[2], w[3])]
            done -= len(jobs)
        for first in range(0, len(jobs), batch_size):
            batch = jobs[first : first + batch_size]
            device = next(model.parameters(), torch.empty(0)).device
            inp = torch.stack([y[item, :, w[0] : w[1]] for item, w in batch]).to(device)
            idx = torch.tensor([item for item, _ in batch])
            physics_batch = Clipping(_pick(high, idx).to(device), _pick(low, idx).to(device))
            with autocast(device, precision):
                restored = model(inp, physics_batch).to(out.device, out.dtype)
            for row, (item, (start, _, core_start, core_stop)) in enumerate(batch):
                out[item, :, core_start:core_stop] = restored[row, :, core_start - start : core_stop - start]
            done += len(batch)
            if progress is not None:
                progress(done, total)
    return out


def _clipped_near(clipped: Tensor, start: int, stop: int) -> bool:
    """Whether ``[start - SKIP_MARGIN, stop + SKIP_MARGIN)`` holds a clipped sample (``clipped``: a mask)."""
    return bool(clipped[max(start - SKIP_MARGIN, 0) : stop + SKIP_MARGIN].any())


def _pick(threshold: Tensor, idx: Tensor) -> Tensor:
    return threshold[idx] if threshold.dim() == 3 else threshold
