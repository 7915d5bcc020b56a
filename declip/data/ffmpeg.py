"""Audio that libsndfile cannot open, AAC above all (``.m4a``, ``.mp4``, ``.aac``), through FFmpeg.

FFmpeg comes inside the PyAV wheel (``pip install 'declip[aac]'``): its own AAC encoder and decoder, no
system library needed. Decoded samples come back as float32 ``(frames, channels)`` at the file's own
rate. FFmpeg's MP4 demuxer drops the AAC encoder's priming samples, so an ``.m4a`` decodes aligned
sample for sample with what was encoded; a raw ADTS ``.aac`` stream carries no such note and decodes
1024 samples late, as every player plays it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from declip.errors import ConfigError

FFMPEG_EXTENSIONS = (".m4a", ".mp4", ".aac")
INSTALL = "pip install 'declip[aac]' (PyAV, which brings FFmpeg)"


def libsndfile_error(path: str | Path) -> str | None:
    """Why libsndfile cannot open ``path`` (WAV, FLAC, Ogg, Opus, MP3, AIFF ... it opens), or ``None``."""
    try:
        sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as error:
        return str(error)
    return None


def only_ffmpeg_reads(path: str | Path) -> bool:
    """``False`` when libsndfile opens ``path``; ``True`` when only FFmpeg decodes it (AAC). Raises the
    one-line ``ConfigError`` of :func:`probe` when neither does."""
    reason = libsndfile_error(path)
    if reason is None:
        return False
    probe(path, reason)
    return True


def available() -> bool:
    """Whether PyAV, and so FFmpeg, is installed."""
    return importlib.util.find_spec("av") is not None


class _NotOpened(Exception):
    """FFmpeg cannot open the file at all (the message: FFmpeg's reason)."""


def _av():
    try:
        import av
    except ImportError:
        raise ConfigError(f"libsndfile cannot read this format; for AAC (.m4a, .mp4, .aac): {INSTALL}") from None
    return av


@contextlib.contextmanager
def _audio_stream(source):
    """``(av, container, stream)``: the first audio stream of ``source`` with its decoder, closed after.
    ``_NotOpened`` when FFmpeg cannot open it; ``ConfigError`` with no audio stream or no decoder for it."""
    av = _av()
    try:
        container = av.open(source if isinstance(source, io.BytesIO) else str(source))
    except (av.FFmpegError, OSError, ValueError) as error:
        raise _NotOpened(str(error)) from error
    try:
        if not container.streams.audio:
            raise ConfigError("the file holds no audio stream")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise ConfigError("FFmpeg has no decoder for its audio stream")
        yield av, container, stream
    finally:
        container.close()


def probe(path: str | Path, libsndfile_reason: str) -> None:
    """Check that FFmpeg decodes ``path``, which libsndfile could not open (``libsndfile_reason``); raises
    a one-line ``ConfigError`` saying why not: FFmpeg is not installed (an AAC file name: how to
    install it; any other: libsndfile's reason), or libsndfile's reason and FFmpeg's (it cannot open
    the file, finds no audio stream or has no decoder for it)."""
    if not available():
        if Path(path).suffix.lower() in FFMPEG_EXTENSIONS:
            raise ConfigError(f"{Path(path).suffix} files are decoded by FFmpeg: {INSTALL}")
        raise ConfigError(f"unreadable audio ({libsndfile_reason})")
    try:
        with _audio_stream(path):
            pass
    except (_NotOpened, ConfigError) as error:
        raise ConfigError(f"unreadable audio ({libsndfile_reason}; FFmpeg: {error})") from error


@contextlib.contextmanager
def frames(source: str | Path | io.BytesIO) -> Iterator[tuple[int, int, Iterator[np.ndarray]]]:
    """``(rate, channels, blocks)`` of the first audio stream of ``source`` (a path, or bytes in a
    ``BytesIO``): ``blocks`` yields its samples in order as ``(frames, channels)`` float32 arrays, any
    sample format converted. The file closes when the ``with`` block ends. Raises ``ConfigError``
    (one line) when FFmpeg is missing, cannot read it, or the stream breaks off."""
    try:
        with _audio_stream(source) as (av, container, stream):
            context = stream.codec_context
            rate, layout = context.sample_rate, context.layout
            try:
                resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)  # packed float32
            except (av.FFmpegError, ValueError) as error:
                raise ConfigError(f"FFmpeg cannot convert its samples ({error})") from error

            def blocks() -> Iterator[np.ndarray]:
                try:
                    for packet in container.demux(stream):  # the last, empty packet flushes the decoder
                        for frame in packet.decode():
                            for out in resampler.resample(frame):
                                yield out.to_ndarray().reshape(-1, layout.nb_channels)
                    for out in resampler.resample(None):
                        yield out.to_ndarray().reshape(-1, layout.nb_channels)
                except av.FFmpegError as error:
                    raise ConfigError(f"the audio stream breaks off ({error})") from error

            yield rate, layout.nb_channels, blocks()
    except _NotOpened as error:
        raise ConfigError(f"unreadable audio (FFmpeg: {error})") from error


def decode(source: str | Path | io.BytesIO) -> tuple[np.ndarray, int]:
    """The samples of ``source`` (a path, or bytes in a ``BytesIO``) as ``(frames, channels)`` float32
    and the rate. Raises ``ConfigError`` (one line) as :func:`frames` does, or when it holds no samples."""
    with frames(source) as (rate, channels, blocks):
        data = list(blocks)
    audio = np.concatenate(data) if data else np.zeros((0, channels), np.float32)
    if len(audio) == 0:
        raise ConfigError("the file holds no samples")
    return audio, rate


def encode_aac(audio: np.ndarray, sample_rate: int, kbps: float) -> bytes:
    """``audio`` ``(frames, channels)`` encoded with FFmpeg's AAC encoder (LC, constant bit rate) into
    an MP4 (``.m4a``) file's bytes."""
    av = _av()
    layout = {1: "mono", 2: "stereo"}.get(audio.shape[1])
    if layout is None:
        raise ConfigError(f"the AAC encoder here takes mono or stereo; got {audio.shape[1]} channels")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout=layout)
        stream.bit_rate = int(kbps * 1000)
        for start in range(0, len(audio), 1024):  # the encoder's frame size
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio[start : start + 1024].T, dtype=np.float32), format="fltp", layout=layout
            )
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()
