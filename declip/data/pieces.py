"""Pieces: a track cut into a few seconds each, stored as FLAC bytes: the unit of a packed corpus."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

SUMMARY = "declip-pack.json"  # the summary of a packed corpus, written when packing ends
SILENT_PIECE_DB = -60.0  # pieces quieter than this (RMS, dBFS) are not packed


def cut_pieces(frames: int, rate: int, seconds: float) -> list[tuple[int, int]]:
    """``(start, frames)`` of consecutive pieces covering ``frames`` samples. Pieces are ``seconds``
    long; the last one takes the remainder, so every piece lasts between 0.5 and 1.5 ``seconds``
    (a track shorter than that is one piece)."""
    size = max(1, round(seconds * rate))
    count = max(1, round(frames / size))
    return [(k * size, size if k < count - 1 else frames - k * size) for k in range(count)]


def is_silent(x: np.ndarray) -> bool:
    """Whether the samples ``x`` are quieter than :data:`SILENT_PIECE_DB` (RMS)."""
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20) < SILENT_PIECE_DB


def encode_piece(x: np.ndarray, rate: int) -> tuple[bytes, float]:
    """``x`` ``(frames, channels)`` float as 24-bit FLAC bytes and the scale to multiply back:
    a piece whose peak reaches 1 (a sum of stems can) is scaled down rather than clipped."""
    scale = max(1.0, float(np.abs(x).max()) / 0.999)
    buffer = io.BytesIO()
    sf.write(buffer, x / scale, rate, format="FLAC", subtype="PCM_24")
    return buffer.getvalue(), scale


def decode_piece(flac: bytes | memoryview, scale: float) -> Tensor:
    """The samples of a packed piece, ``(channels, frames)`` float32."""
    data, _ = sf.read(io.BytesIO(bytes(flac)), dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()) * scale
