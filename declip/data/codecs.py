"""Lossy coding with real encoders (libsndfile's LAME, libopus and libvorbis; FFmpeg's AAC through PyAV,
:mod:`declip.data.ffmpeg`), for tests and benchmarks.

MP3 goes through LAME at constant bit rate; its 128 kbps setting is libsndfile's compression level
2/3 (320 - level * 288 kbps, snapped to an MP3 rate). Opus runs at 48 kHz only, so other rates are
resampled there and back (torchaudio); libsndfile maps the level to about
``(6 + 250 * (1 - level))`` kbps per channel. Decoded audio comes back aligned sample for sample
with the input (the decoders drop the encoder delay). LAME scales the signal by 0.95 on the way
(:data:`ENCODER_GAINS`). AAC is stored in an MP4 (``.m4a``) file at the input's rate, constant bit rate.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import soundfile as sf
import torch
import torchaudio.transforms as AT

from declip.data.ffmpeg import decode, encode_aac

CODECS = ("mp3", "opus", "vorbis", "aac")
ENCODER_GAINS = {"mp3": 0.95, "opus": 1.0, "vorbis": 1.0, "aac": 1.0}
"""The factor each encoder applies to the level of a signal (LAME's 0.95; measured with a sine)."""


@lru_cache(maxsize=8)
def _resampler(source: int, target: int) -> AT.Resample:
    """A resampler with its filter computed once (the functional form rebuilds it on every call)."""
    return AT.Resample(source, target)


def _resample(audio: np.ndarray, source: int, target: int) -> np.ndarray:
    """``audio`` ``(frames, channels)`` from ``source`` to ``target`` Hz."""
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(audio.T, dtype=np.float32))
        return _resampler(source, target)(x).numpy().T


_SETTINGS = {
    "mp3": lambda kbps, channels: {
        "format": "MP3", "subtype": "MPEG_LAYER_III", "bitrate_mode": "CONSTANT",
        "compression_level": float(np.clip((320 - kbps) / 288, 0.0, 0.99)),
    },
    "opus": lambda kbps, channels: {
        "format": "OGG", "subtype": "OPUS", "compression_level": float(np.clip(1 - (kbps / channels - 6) / 250, 0, 1)),
    },
    # quality, not a bit rate: level 0.5 is about 200 kbps for stereo music
    "vorbis": lambda kbps, channels: {
        "format": "OGG", "subtype": "VORBIS", "compression_level": float(np.clip(1 - kbps / 400, 0, 1)),
    },
}  # fmt: skip
"""libsndfile's settings (``sf.write`` keywords) for each codec it encodes, from the bit rate and channels."""


def _libsndfile_encode(audio: np.ndarray, sample_rate: int, codec: str, kbps: float) -> tuple[bytes, int]:
    rate = 48000 if codec == "opus" else sample_rate
    if rate != sample_rate:
        audio = _resample(audio, sample_rate, rate)
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, **_SETTINGS[codec](kbps, audio.shape[1]))
    return buffer.getvalue(), rate


def _libsndfile_decode(data: bytes) -> np.ndarray:
    return sf.read(io.BytesIO(data), dtype="float32", always_2d=True)[0]


def _ffmpeg_encode(audio: np.ndarray, sample_rate: int, codec: str, kbps: float) -> tuple[bytes, int]:
    return encode_aac(audio, sample_rate, kbps), sample_rate


def _ffmpeg_decode(data: bytes) -> np.ndarray:
    return decode(io.BytesIO(data))[0]


_LIBRARIES = {
    "mp3": (_libsndfile_encode, _libsndfile_decode),
    "opus": (_libsndfile_encode, _libsndfile_decode),
    "vorbis": (_libsndfile_encode, _libsndfile_decode),
    "aac": (_ffmpeg_encode, _ffmpeg_decode),
}
"""Each codec's encoder and decoder: ``encode(audio, rate, codec, kbps) -> (bytes, stored rate)``, ``decode(bytes)``."""


def _library(codec: str):
    if codec not in _LIBRARIES:
        raise ValueError(f"codec must be one of {CODECS}; got {codec!r}")
    return _LIBRARIES[codec]


def encode(audio: np.ndarray, sample_rate: int, codec: str, kbps: float) -> tuple[bytes, int]:
    """The encoded bytes of ``audio`` ``(frames, channels)`` and the rate they are stored at."""
    return _library(codec)[0](audio, sample_rate, codec, kbps)


def code(audio: np.ndarray, sample_rate: int, codec: str, kbps: float) -> np.ndarray:
    """``audio`` ``(frames, channels)`` encoded and decoded again, at ``sample_rate``, same length."""
    encoder, decoder = _library(codec)
    data, rate = encoder(audio, sample_rate, codec, kbps)
    decoded = decoder(data)
    if rate != sample_rate:
        decoded = _resample(decoded, rate, sample_rate)
    out = np.zeros((audio.shape[0], audio.shape[1]), dtype=np.float32)
    n = min(len(out), len(decoded))
    out[:n] = decoded[:n]
    return out
