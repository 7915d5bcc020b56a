"""Which of a model's settings restores a recording best, asked of the recording itself (``declip restore --choose``).

Clip the recording again, harder (at ``1/g`` of its levels), and every setting's restoration of that can be scored on
the samples the second clipping hid: the recording still holds them, so no clean audio is needed. The setting with the
smallest error there restores the whole recording; of settings as good as each other there, the faster. The question
is asked once, of the ``seconds`` of the recording that hold the most such samples, before the restoration proper,
which stays chunked and exact. For the unfolded model's probe (on, or off with ``probe_iterations=0``) on held-out
segments of 6 s at 10 dB input SDR, the choice was the better setting for 8 of 8 game-music segments, 7 of 8 solo
voices and 5 of 8 chorales (docs/results.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from declip.detection.measurement import Measurement
from declip.errors import ConfigError
from declip.inference.estimate import network_estimate
from declip.inference.methods import RestoreMethod
from declip.physics import Clipping

G = 1.25  # the second clipping's level is 1/G of the recording's
SECONDS = 6.0  # the excerpt the question is asked of
TIE = 1e-3  # errors within this share of the smallest are a tie, which the faster candidate takes


@dataclass(frozen=True)
class Choice:
    """The chosen setting's name, every setting's error on the hidden samples, and where it was asked."""

    name: str
    errors: dict[str, float]
    seconds: dict[str, float]  # each candidate's time on the excerpt clipped again
    start: int  # the excerpt's first frame in the recording
    frames: int
    hidden: int  # samples the second clipping hid there (over the channels)
    rate: int

    def describe(self) -> str:
        """``chose probe_iterations=0 by re-clipping 6.0 s at 12.0 s (error relative to the model's setting's: the
        model's setting 1.000, probe_iterations=0 0.810)``, for one-line reports."""
        where = f"{self.frames / self.rate:.1f} s at {self.start / self.rate:.1f} s"
        if not self.hidden:
            return f"kept {self.name}: re-clipping {where} hid no sample"
        first = next(iter(self.errors))
        verb = "kept" if self.name == first else "chose"
        base = self.errors[first]
        relative = ", ".join(f"{n} {e / base:.3f}" if base > 0 else f"{n} {e:.3g}" for n, e in self.errors.items())
        least = min(self.errors.values())
        tie = ", a tie: the faster taken" if sum(e <= least * (1 + TIE) for e in self.errors.values()) > 1 else ""
        return f"{verb} {self.name} by re-clipping {where} (error relative to {first}'s: {relative}{tie})"


def reclipping(physics: Clipping, g: float = G) -> Clipping:
    """The harder clipping: ``physics``'s levels divided by ``g``."""
    if not g > 1:
        raise ConfigError(f"the second clipping must be harder: g above 1; got {g}")
    return Clipping(physics.high / g, physics.low / g)


def hidden(view: Tensor, physics: Clipping, g: float = G) -> Tensor:
    """Samples of ``view`` (the measurement's :meth:`~Measurement.level_view`) that the second clipping hides and
    the recording holds: reliable under ``physics``, at or beyond the harder levels."""
    return reclipping(physics, g).masks(view).clipped & physics.masks(view).reliable


def busiest(counts: Tensor, rate: int, frames: int, seconds: float) -> tuple[int, int]:
    """``(start, frames)`` of the ``seconds`` (whole seconds, at least one) whose per-second ``counts`` sum highest;
    the earliest such; the whole recording when it is no longer."""
    width = max(1, math.ceil(seconds))
    if width >= counts.numel():
        return 0, frames
    sums = counts.double().cumsum(0)
    windows = sums[width - 1 :] - torch.cat([sums.new_zeros(1), sums[:-width]])
    first = int(torch.argmax(windows))  # the first maximum
    return first * rate, min(width * rate, frames - first * rate)


def per_second(mask: Tensor, rate: int, start: int, seconds: int) -> Tensor:
    """Samples of ``mask`` ``(channels, frames)``, its first frame at ``start``, counted per second of the
    recording: ``(seconds,)``."""
    bins = (torch.arange(mask.shape[-1], device=mask.device) + start) // rate
    return torch.bincount(bins, weights=mask.sum(0).double(), minlength=seconds)[:seconds].cpu()


def choose(
    view: Tensor,
    rate: int,
    candidates: dict[str, RestoreMethod],
    measurement: Measurement,
    windows: tuple[float, int],
    g: float = G,
    start: int = 0,
) -> Choice:
    """The candidate whose restoration of ``view`` clipped again at ``1/g`` of its levels comes nearest ``view`` on
    the samples that clipping hid; of candidates within :data:`TIE` of the nearest, the one that took least time
    there; the first when that clipping hid nothing. ``view`` ``(channels, frames)`` is an excerpt of the recording
    as :meth:`Measurement.level_view` gives it, its first frame at ``start``.
    ``windows``: the network windows' ``(chunk_seconds, batch_size)``."""
    if not candidates:
        raise ConfigError("choose needs at least one candidate setting")
    physics = measurement.physics
    harder = reclipping(physics, g)
    masks = harder.masks(view)
    again = harder(view)
    lost = hidden(view, physics, g)
    count = int(lost.sum())
    first = next(iter(candidates))
    if not count:
        return Choice(first, {}, {}, start, view.shape[-1], 0, rate)
    errors, seconds = {}, {}
    for name, method in candidates.items():
        began = time.perf_counter()
        estimate = network_estimate(harder.network_input(again, masks), rate, method, harder, *windows)
        restored = harder.project(estimate, again, masks)
        seconds[name] = time.perf_counter() - began
        errors[name] = float(((restored - view)[lost].double() ** 2).sum())
    least = min(errors.values())
    tied = [name for name in candidates if errors[name] <= least * (1 + TIE)]
    best = min(tied, key=lambda name: seconds[name])  # as good on these seconds: the faster
    return Choice(best, errors, seconds, start, view.shape[-1], count, rate)


def choose_in(
    read: Callable[[int, int], Tensor],
    frames: int,
    rate: int,
    block: int,
    candidates: dict[str, RestoreMethod],
    measurement: Measurement,
    windows: tuple[float, int],
    seconds: float = SECONDS,
    g: float = G,
) -> Choice:
    """:func:`choose` asked of the ``seconds`` of a recording of ``frames`` frames that hold the most samples the
    second clipping hides; ``read(start, frames)`` gives its samples ``(channels, frames)``, scanned ``block`` frames
    at a time (memory does not grow with the recording)."""
    total = math.ceil(frames / rate)
    counts = torch.zeros(total, dtype=torch.float64)
    for first in range(0, frames, block):
        part = read(first, min(block, frames - first))
        counts += per_second(hidden(measurement.level_view(part, first), measurement.physics, g), rate, first, total)
    start, length = busiest(counts, rate, frames, seconds)
    view = measurement.level_view(read(start, length), start)
    return choose(view, rate, candidates, measurement, windows, g, start)
