"""Audio that libsndfile cannot open, AAC above all (``.m4a``, ``.mp4``, ``.aac``), through FFmpeg.

FFmpeg comes inside the PyAV wheel (``pip install 'declip[aac]'``): its own AAC encoder and decoder, no
system library needed. Decoded samples come back as float32 ``(frames, channels)`` at the file's own
rate. FFmpeg's MP4 demuxer drops the AAC encoder's priming samples, so an ``.m4a`` decodes aligned
sample for sample with what was encoded; a raw ADTS ``.aac`` stream carries no such note and decodes
1024 samples late, as every player plays it.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import soundfile as sf

from declip.errors import ConfigError

FFMPEG_EXTENSIONS = (".m4a", ".mp4", ".aac")
INSTALL = "pip install 'declip[aac]' (PyAV, which brings FFmpeg)"


def libsndfile_reads(path: str | Path) -> bool:
    """Whether libsndfile opens ``path`` (WAV, FLAC, Ogg, Opus, MP3, AIFF ...)."""
    try:
        sf.info(path)
    except (sf.LibsndfileError, RuntimeError):
        return False
    return True


def available() -> bool:
    return importlib.util.find_spec("av") is not None


def probe(path: str | Path, libsndfile_error: Exception | str) -> None:
    """Check that FFmpeg reads ``path``, which libsndfile could not open (``libsndfile_error``); raises
    a one-line ``ConfigError`` saying why not: FFmpeg is not installed (an AAC file name: how to
    install it; any other: libsndfile's reason), it cannot read the file either, or finds no audio."""
    if not available():
        if Path(path).suffix.lower() in FFMPEG_EXTENSIONS:
            raise ConfigError(f"{Path(path).suffix} files are decoded by FFmpeg: {INSTALL}")
        raise ConfigError(f"unreadable audio ({libsndfile_error})")
    av = _av()
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as error:
        raise ConfigError(f"unreadable audio ({libsndfile_error}; FFmpeg: {error})") from error
    with container:
        if not container.streams.audio:
            raise ConfigError("the file holds no audio stream")


def _av():
    try:
        import av
    except ImportError:
        raise ConfigError(f"libsndfile cannot read this format; for AAC (.m4a, .mp4, .aac): {INSTALL}") from None
    return av


def _open(av, source):
    try:
        container = av.open(source if isinstance(source, io.BytesIO) else str(source))
    except (av.FFmpegError, OSError) as error:
        raise ConfigError(f"unreadable audio (FFmpeg: {error})") from error
    if not container.streams.audio:
        container.close()
        raise ConfigError("the file holds no audio stream")
    return container


def _frames(source):
    """``(rate, channels, iterator of (frames, channels) float32 blocks)`` of the first audio stream."""
    av = _av()
    container = _open(av, source)
    stream = container.streams.audio[0]
    rate, layout = stream.codec_context.sample_rate, stream.codec_context.layout
    resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)  # any sample format to packed float32

    def blocks():
        try:
            for packet in container.demux(stream):  # the last, empty packet flushes the decoder
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        yield out.to_ndarray().reshape(-1, layout.nb_channels)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1, layout.nb_channels)
        except av.FFmpegError as error:
            raise ConfigError(f"the audio stream breaks off ({error})") from error
        finally:
            container.close()

    return rate, layout.nb_channels, blocks()


def decode(source: str | Path | io.BytesIO) -> tuple[np.ndarray, int]:
    """The samples of ``source`` (a path or bytes in a ``BytesIO``) as ``(frames, channels)`` float32 and
    the rate. Raises ``ConfigError`` (one line) when FFmpeg is missing or cannot read it."""
    rate, channels, blocks = _frames(source)
    data = list(blocks)
    audio = np.concatenate(data) if data else np.zeros((0, channels), np.float32)
    if len(audio) == 0:
        raise ConfigError("the file holds no samples")
    return audio, rate


def decode_to_wav(path: str | Path, wav: str | Path) -> sf._SoundFileInfo:
    """Decode ``path`` into the float WAV file ``wav`` block by block (memory does not grow with the
    length); returns the WAV's ``sf.info``. Raises ``ConfigError`` as :func:`decode` does."""
    rate, channels, blocks = _frames(path)
    with sf.SoundFile(wav, "w", rate, channels, "FLOAT", format="WAV") as out:
        for block in blocks:
            out.write(block)
    info = sf.info(wav)
    if info.frames == 0:
        raise ConfigError("the file holds no samples")
    return info


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
