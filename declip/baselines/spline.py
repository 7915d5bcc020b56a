"""Cubic interpolation of clipped runs: the simplest classical declipper, a floor for every learned one.

Each run of clipped samples is bridged by a cubic that continues the reliable samples on both sides
(their values and local slopes), then the result is made consistent (reliable samples kept, clipped
ones at or beyond the threshold). All runs of all rows are filled at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from declip.errors import ConfigError
from declip.physics import Clipping


def spline_fill(y: Tensor, physics: Clipping, neighbours: int = 4) -> Tensor:
    """Fill the clipped runs of ``y`` ``(..., time)`` from their reliable neighbours; consistent result.

    ``physics`` holds thresholds broadcastable to ``y``. Each run is bridged by the cubic (Hermite)
    that meets the last reliable sample before it and the first after it with the slopes of the lines
    fitted (least squares) to the ``neighbours`` reliable samples on each side (at least 2). A run at
    the signal's edge, with reliable samples on one side only, stays at the threshold."""
    if neighbours < 2:
        raise ConfigError(f"spline needs neighbours >= 2 reliable samples per side; got {neighbours}")
    shape, length = y.shape, y.shape[-1]
    rows = y.reshape(-1, length).double()
    clipped = physics.masks(y).clipped.reshape(rows.shape)
    out = rows.clone()
    if length and bool(clipped.any()) and bool((~clipped).any()):
        out = _fill_runs(rows, clipped, neighbours)
    return physics.project(out.reshape(shape).to(y.dtype), y)


def _side(rows: Tensor, row: Tensor, index: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Slope of the least-squares line through the given samples ``(runs, n)`` of each run's row, and
    whether the side has at least two samples."""
    weights = valid.double()
    count = weights.sum(1).clamp(min=1)
    t = index.double()
    values = rows[row[:, None], index]
    t_mean = (t * weights).sum(1) / count
    v_mean = (values * weights).sum(1) / count
    dt = (t - t_mean[:, None]) * weights
    slope = (dt * (values - v_mean[:, None])).sum(1) / dt.square().sum(1).clamp(min=1e-12)
    return slope, weights.sum(1) >= 2


def _fill_runs(rows: Tensor, clipped: Tensor, neighbours: int) -> Tensor:
    n_rows, length = rows.shape
    padded = torch.nn.functional.pad(clipped.int(), (1, 1))
    edges = padded[:, 1:] - padded[:, :-1]  # +1 at a run's start, -1 just after its end
    starts = (edges == 1).nonzero()
    ends = (edges == -1).nonzero()[:, 1]  # same order: row-major, runs in time order
    row, start = starts[:, 0], starts[:, 1]
    # the n-th reliable sample before and after each run, through the running count of reliable samples
    reliable = ~clipped
    count = torch.nn.functional.pad(reliable.long().cumsum(1), (1, 0))  # reliable samples before each index
    flat = reliable.flatten().nonzero().flatten()  # their flat positions, row-major
    first = torch.nn.functional.pad(count[:, -1].cumsum(0), (1, 0))[:-1]  # rank of each row's first
    steps = torch.arange(neighbours, device=rows.device)
    before = count[row, start][:, None] - 1 - steps  # ranks within the row, nearest first
    after = count[row, ends][:, None] + steps
    total = count[row, -1][:, None]
    valid_before, valid_after = before >= 0, after < total
    index_before = flat[(first[row][:, None] + before.clamp(min=0)).clamp(max=len(flat) - 1)] - row[:, None] * length
    index_after = flat[(first[row][:, None] + after.clamp(max=total - 1)).clamp(max=len(flat) - 1)]
    index_after = index_after - row[:, None] * length
    slope_left, ok_left = _side(rows, row, index_before, valid_before)
    slope_right, ok_right = _side(rows, row, index_after, valid_after)
    both = ok_left & ok_right
    left, right = index_before[:, 0], index_after[:, 0]  # the reliable samples that bound the run
    gap = (right - left).double()
    # every clipped sample: its run, and where it lies between the run's bounding samples
    run_of = (edges[:, :-1] == 1).long().flatten().cumsum(0).reshape(n_rows, length) - 1
    where = clipped.nonzero()
    run = run_of[where[:, 0], where[:, 1]]
    s = (where[:, 1] - left[run]).double() / gap[run]
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    y0, y1 = rows[row[run], left[run]], rows[row[run], right[run]]
    fill = h00 * y0 + h10 * gap[run] * slope_left[run] + h01 * y1 + h11 * gap[run] * slope_right[run]
    out = rows.clone()
    keep = both[run]  # edge runs stay as they are (the projection holds them at the threshold)
    out[where[keep, 0], where[keep, 1]] = fill[keep]
    return out


@dataclass(frozen=True)
class Spline:
    """:func:`spline_fill` with fixed settings, called like a restorer: ``Spline()(y, physics)``."""

    neighbours: int = 4

    def __call__(self, y: Tensor, physics: Clipping) -> Tensor:
        return spline_fill(y, physics, self.neighbours)
