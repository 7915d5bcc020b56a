"""A restoring method's estimate of a clipped signal before the projection, in chunks at the method's own rate:
the step that ``restore_array``, ``restore_file``, the analysis page and the re-clipping choice share."""

from __future__ import annotations

from collections.abc import Callable

import torchaudio.functional as AF
from torch import Tensor

from declip.errors import ConfigError
from declip.inference.methods import RestoreMethod
from declip.physics import Clipping

CONTEXT_SHARE = 4  # a window's core is at least this many times the context it adds on each side


def network_estimate(
    y: Tensor,
    rate: int,
    model: RestoreMethod,
    physics: Clipping,
    chunk_seconds: float,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
    span: tuple[int, int] | None = None,
) -> Tensor:
    """The method's estimate of ``y`` ``(channels, time)`` at ``rate``, before the projection; with
    ``span`` only there (the rest is context)."""
    length = y.shape[1]
    model_rate = model.sample_rate or rate  # None: the method works at any rate
    if span is not None and rate != model_rate:  # on the model's grid, with room for the resampling filter
        span = (max(span[0] * model_rate // rate - 256, 0), -(-span[1] * model_rate // rate) + 256)
    if rate != model_rate:  # clamp again: resampling ripples the plateaus
        y = physics(AF.resample(y, rate, model_rate))
    if model.channels == 1:  # a mono model restores each channel on its own
        items, high, low = y[:, None], physics.high[:, None], physics.low[:, None]
    elif model.channels == y.shape[0]:
        items, high, low = y[None], physics.high[None], physics.low[None]
    else:
        raise ConfigError(f"the model restores {model.channels} channels; this audio has {y.shape[0]}")
    wanted = max(int(chunk_seconds * model_rate), model.hop)
    # a core at least CONTEXT_SHARE times the context on each side, or windows would be mostly context; as many
    # samples per call as asked
    chunk = max(wanted, CONTEXT_SHARE * getattr(model, "context", 0))
    batch_size = max(1, batch_size * wanted // chunk)
    estimate = model.estimate(items, Clipping(high, low), chunk, batch_size, progress, span).reshape(y.shape)
    if rate != model_rate:
        estimate = AF.resample(estimate, model_rate, rate)[:, :length]
    return estimate.to(y.device)
