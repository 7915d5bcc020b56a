"""Declipping scores per input-SDR bucket, as a torchmetrics ``Metric`` (DDP-reduced by sum)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

from declip.physics import sdr

SCORES = ("sdr", "delta_sdr", "delta_sdr_clipped", "si_sdr")
DEFAULT_LEVELS = (1.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0)


def delta_sdr(x: Tensor, x_hat: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
    """The SDR gain of restoring ``y`` into ``x_hat``, :math:`\\mathrm{SDR}(x, \\hat x) - \\mathrm{SDR}(x, y)` in dB,
    ``(batch,)`` for signals ``(batch, ...)``; with ``mask``, on the selected samples only (see
    :func:`~declip.physics.sdr`). In ``x``'s dtype."""
    return sdr(x, x_hat, mask) - sdr(x, y, mask)


def declipping_scores(x_hat: Tensor, x: Tensor, y: Tensor, clipped: Tensor) -> dict[str, Tensor]:
    """Per-example scores in dB, each ``(batch,)``, for signals ``(batch, channels, time)``.

    ``sdr``: SDR(x, x_hat); ``delta_sdr``: :func:`delta_sdr`; ``delta_sdr_clipped``: the same on
    clipped samples only (NaN where none is clipped); ``si_sdr``: scale-invariant SDR, channel mean.
    """
    return {
        "sdr": sdr(x, x_hat),
        "delta_sdr": delta_sdr(x, x_hat, y),
        "delta_sdr_clipped": delta_sdr(x, x_hat, y, clipped),
        "si_sdr": scale_invariant_signal_distortion_ratio(x_hat, x).flatten(1).mean(1),
    }


class DeclippingMetrics(Metric):
    """Means of :data:`SCORES` overall and per bucket; an example goes to the bucket of the level
    nearest its input SDR. ``compute()`` gives ``{"sdr": ..., "sdr@1dB": ..., ...}``.
    Non-finite scores (NaN, or inf from an exact estimate) are left out of the means."""

    full_state_update = False

    def __init__(self, levels: Sequence[float] = DEFAULT_LEVELS) -> None:
        super().__init__()
        self.levels = [float(v) for v in levels]
        shape = (len(SCORES), len(self.levels))
        self.add_state("total", torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, x_hat: Tensor, x: Tensor, y: Tensor, clipped: Tensor, input_sdr: Tensor) -> None:
        scores = declipping_scores(x_hat, x, y, clipped)
        levels = torch.tensor(self.levels, device=input_sdr.device, dtype=torch.float64)
        bucket = (input_sdr.double()[:, None] - levels).abs().argmin(1)
        for row, name in enumerate(SCORES):
            value = scores[name].double()
            keep = torch.isfinite(value) & torch.isfinite(input_sdr)
            self.total[row].index_add_(0, bucket[keep], value[keep])
            self.count[row].index_add_(0, bucket[keep], torch.ones_like(value[keep]))

    def compute(self) -> dict[str, Tensor]:
        out = {}
        for row, name in enumerate(SCORES):
            out[name] = self.total[row].sum() / self.count[row].sum()
            for col, level in enumerate(self.levels):
                if self.count[row, col] > 0:
                    out[f"{name}@{level:g}dB"] = self.total[row, col] / self.count[row, col]
        return {k: v.float() for k, v in out.items()}
