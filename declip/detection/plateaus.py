"""Find the clip level of a recording from the signal itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from declip.physics import LEVEL_TOLERANCE

MIN_PLATEAUS = 3  # separate runs at the extreme value before a polarity counts as clipped
RELATIVE_TOLERANCE = LEVEL_TOLERANCE  # float rounding around the clip level: the physics' own tolerance


@dataclass(frozen=True)
class ClipLevel:
    """Per-channel thresholds ``(channels, 1)`` and whether each polarity was found clipped.

    For a polarity that is not clipped the threshold lies just beyond the signal's extreme, so no
    sample counts as clipped there and the clipping scale stays finite."""

    high: Tensor
    low: Tensor
    clipped_high: Tensor
    clipped_low: Tensor

    @property
    def any(self) -> bool:
        return bool(self.clipped_high.any() or self.clipped_low.any())


def detect_clip_level(y: Tensor, min_plateaus: int = MIN_PLATEAUS, tolerance: float = RELATIVE_TOLERANCE) -> ClipLevel:
    """Saturation levels of ``y`` ``(channels, time)``, per channel and polarity.

    A polarity is clipped when its extreme value (within ``tolerance`` relative, which absorbs float
    rounding; integer formats hit the level exactly) is held for two or more consecutive samples in
    at least ``min_plateaus`` separate places: a clipped recording flattens many peaks at one level.
    The threshold is the lowest value counted as at the extreme. Known blind spots: a pure tone
    coarsely quantised can look clipped, and clipping followed by lossy coding or filtering (whose
    ripple breaks the plateaus) can look unclipped; pass the level by hand then.
    """
    dtype = y.dtype if y.is_floating_point() else torch.float32
    return detect_clip_level_blocks(lambda: [y], min_plateaus, tolerance, dtype)


def detect_clip_level_blocks(
    blocks: Callable[[], Iterable[Tensor]],
    min_plateaus: int = MIN_PLATEAUS,
    tolerance: float = RELATIVE_TOLERANCE,
    dtype: torch.dtype = torch.float32,
) -> ClipLevel:
    """:func:`detect_clip_level` over a signal given as consecutive blocks ``(channels, time)``;
    ``blocks()`` yields them afresh on each call, so memory stays bounded.

    One read in the common case: each block is summarised against the band below its own peak, and
    blocks whose peak is the signal's peak (every block a clipped recording reaches the level in)
    need nothing more. Only blocks that peak inside the band but below the signal's peak are read a
    second time. The summaries are joined across block edges from the samples kept at each end."""
    records: list[dict[str, _Summary]] = []  # plain Python numbers: no small tensor outlives its block
    channels, block_dtype = 0, dtype
    for block in blocks():
        if block.shape[-1]:
            channels, block_dtype = block.shape[0], block.dtype if block.is_floating_point() else dtype
            records.append(_summarise_both(block, dtype, tolerance))
    if not records:
        raise ValueError("no samples to detect a clip level in")
    # the extremes of the samples as given (an integer block's before its conversion); NaN propagates
    peaks = {
        name: torch.tensor([r[name].peak for r in records], dtype=torch.float64).amax(0) for name in ("high", "low")
    }
    edges = {name: _edge(peak, tolerance).to(block_dtype) for name, peak in peaks.items()}
    bands = {name: edge.double().tolist() for name, edge in edges.items()}
    tops = {name: peak.tolist() for name, peak in peaks.items()}
    stale = [
        any(r[n].top[c] >= bands[n][c] and r[n].peak[c] < tops[n][c] for n in peaks for c in range(channels))
        for r in records
    ]  # reaches into the band but peaks below the top: summarised against the wrong edge
    if any(stale):
        nonempty = (block for block in blocks() if block.shape[-1])
        for index, block in enumerate(nonempty):
            if stale[index]:
                records[index] = _summarise_both(block, dtype, tolerance, edges)
    out = {}
    for name, sign in (("high", 1.0), ("low", -1.0)):
        peak = peaks[name]
        runs, level = _join([r[name] for r in records], bands[name])
        clipped = (torch.tensor(runs) >= min_plateaus) & (peak > 0)
        beyond = peak.clamp(min=0) * (1 + 1e-3) + 1e-9  # just past the extreme: nothing counts as clipped
        out[name] = (sign * torch.where(clipped, torch.tensor(level, dtype=torch.float64), beyond))[:, None]
        out[f"clipped_{name}"] = clipped
    # an unclipped polarity takes at least the other's magnitude, keeping the scale representative
    high = torch.where(out["clipped_high"][:, None], out["high"], torch.maximum(out["high"], -out["low"]))
    low = torch.where(out["clipped_low"][:, None], out["low"], torch.minimum(out["low"], -out["high"]))
    return ClipLevel(high.to(dtype), low.to(dtype), out["clipped_high"], out["clipped_low"])


@dataclass
class _Summary:
    """One non-empty block of one polarity ``v`` (the signal, or its negation) against an edge:
    samples at or above it are "near" the extreme. Per channel, as exact Python floats: ``peak``
    (of the samples as given), ``top`` (of them in the float type compared), ``level`` (the lowest
    near value, inf if none), ``starts`` (runs of two or more near samples that start inside the
    block, one at its first sample counted as a start) and the block's first and last two values,
    which join runs across block edges."""

    peak: list[float]
    top: list[float]
    level: list[float]
    starts: list[int]
    head: list[list[float]]
    tail: list[list[float]]


def _edge(peak: Tensor, tolerance: float) -> Tensor:
    return peak - tolerance * peak.abs()  # at or beyond the band's edge counts as at the extreme


def _summarise_both(
    block: Tensor, dtype: torch.dtype, tolerance: float, edges: dict[str, Tensor] | None = None
) -> dict[str, _Summary]:
    """Both polarities of ``block``; the peaks come from the samples as given, before an integer
    block is converted to ``dtype`` (whose rounding could move them)."""
    peaks = {"high": block.amax(-1).double(), "low": -block.amin(-1).double()}
    v = block if block.is_floating_point() else block.to(dtype)
    return {
        name: _summarise(signal, tolerance, peaks[name], None if edges is None else edges[name])
        for name, signal in (("high", v), ("low", -v))
    }


def _summarise(v: Tensor, tolerance: float, peak: Tensor, edge: Tensor | None = None) -> _Summary:
    """``v`` against ``edge`` (per channel, in ``v``'s float type), by default the edge of the band
    below ``peak``."""
    top = v.amax(-1)
    if edge is None:
        edge = _edge(peak, tolerance).to(v.dtype)
    edge = edge.to(v.device)
    near = v >= edge[:, None]
    level = v.masked_fill(~near, torch.inf).amin(-1)
    pair = near[:, 1:] & near[:, :-1]
    starts = pair[:, :1].sum(-1) + (pair[:, 1:] & ~pair[:, :-1]).sum(-1)
    exact = {"peak": peak, "top": top, "level": level, "head": v[:, :2], "tail": v[:, -2:]}
    return _Summary(**{k: t.double().tolist() for k, t in exact.items()}, starts=starts.tolist())


def _join(summaries: list[_Summary], edge: list[float]) -> tuple[list[int], list[float]]:
    """Per channel: runs of two or more samples at or above ``edge`` over the blocks in order (a run
    across a block edge counts once), and the lowest such sample."""
    runs, levels = [], []
    for c, e in enumerate(edge):
        count, level, near_last, pair_last = 0, float("inf"), False, False
        for s in summaries:
            if s.top[c] >= e:  # else no sample of the block is near
                count += s.starts[c]
                level = min(level, s.level[c])
            head = [x >= e for x in s.head[c]]
            tail = [x >= e for x in s.tail[c]]
            cross = near_last and head[0]  # the pair across the block edge
            count += cross and not pair_last  # ... starts a run
            if len(head) == 2:
                count -= cross and head[1]  # ... so the block's first pair does not
                near_last, pair_last = tail[1], tail[0] and tail[1]
            else:
                near_last, pair_last = head[0], cross
        runs.append(count)
        levels.append(level)
    return runs, levels
