"""Spectrogram figures of clipped, restored and clean audio (for loggers and the docs)."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor


def spectrogram_db(signal: Tensor, n_fft: int = 1024) -> Tensor:
    """Log-magnitude STFT of a mono ``signal`` ``(time,)``: ``(n_fft // 2 + 1, frames)`` in dB
    (``n_fft`` shrinks to a quarter of a short signal's length)."""
    n_fft = max(min(n_fft, 1 << (signal.shape[-1].bit_length() - 3)), 4)
    spec = torch.stft(
        signal.float(), n_fft, n_fft // 4, window=torch.hann_window(n_fft, device=signal.device), return_complex=True
    )
    return 20 * torch.log10(spec.abs().clamp_min(1e-5))


def spectrogram_figure(
    signals: dict[str, Tensor], sample_rate: int, n_fft: int = 1024, title: str | None = None, floor_db: float = 80
) -> Figure:
    """One spectrogram panel per named mono signal ``(time,)``, on one colour scale (the loudest
    panel's peak down to ``floor_db`` below it)."""
    specs = {name: spectrogram_db(s.detach().cpu(), n_fft) for name, s in signals.items()}
    top = max(float(s.max()) for s in specs.values())
    fig = Figure(figsize=(8, 2.2 * len(specs)), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(specs), 1, sharex=True, squeeze=False)[:, 0]
    seconds = next(iter(signals.values())).shape[-1] / sample_rate
    for ax, (name, spec) in zip(axes, specs.items()):
        image = ax.imshow(
            spec.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=top - floor_db, vmax=top,
            extent=(0, seconds, 0, sample_rate / 2000),
        )  # fmt: skip
        ax.set_ylabel("kHz")
        ax.set_title(name, loc="left", fontsize=10)
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(image, ax=list(axes), label="dB", shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def figure_array(fig: Figure) -> np.ndarray:
    """The rendered figure as an RGB ``uint8`` array ``(height, width, 3)``."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
