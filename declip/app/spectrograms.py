"""Spectrograms of a region of the input and of its restoration, one above the other, as a PNG."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
import torch

from declip.plots import spectrogram_figure


def read_region(path: str | Path, start: float, seconds: float) -> tuple[torch.Tensor, int]:
    """The channels' mean ``(time,)`` of ``seconds`` from ``start`` (clamped to the file), and the rate."""
    with sf.SoundFile(path) as f:
        rate = f.samplerate
        first = min(max(int(start * rate), 0), max(f.frames - 1, 0))
        f.seek(first)
        data = f.read(max(int(seconds * rate), 1), dtype="float32", always_2d=True)
    return torch.from_numpy(data).mean(1), rate


def region_png(source: str | Path, restored: str | Path, start: float, seconds: float, png: str | Path) -> Path:
    """Write the spectrograms of ``seconds`` from ``start`` of ``source`` (before) and ``restored``
    (after) on one colour scale to ``png``; returns its path."""
    before, rate = read_region(source, start, seconds)
    after, _ = read_region(restored, start, seconds)
    end = start + before.shape[-1] / rate
    fig = spectrogram_figure(
        {"input (clipped)": before, "restored": after}, rate, title=f"{start:.2f} s to {end:.2f} s"
    )
    fig.savefig(png, dpi=90)
    return Path(png)
