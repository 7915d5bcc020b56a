"""Read an audio file in consecutive blocks, decoding several blocks at once where the format allows it.

Decoding FLAC is the slowest part of restoring a FLAC file on a GPU (docs/benchmarks.md). FLAC, WAV and
AIFF seeks are sample-exact, so blocks can be read side by side, each thread with its own handle:
libsndfile releases the GIL while it decodes or converts."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from declip.data import ffmpeg
from declip.errors import ConfigError
from declip.inference.prefetch import ordered_map
from declip.inference.wavwrite import FloatWavWriter

PARALLEL_FORMATS = ("FLAC", "WAV", "WAVEX", "RF64", "W64", "AIFF")  # sample-exact seeks (MP3 and Ogg: not so)
DECODE_THREADS = min(8, os.cpu_count() or 1)


class SharedReader:
    """Reads ranges of frames of one file from any number of threads, each through its own handle. Only
    files with sample-exact seeks (``parallel``) may be read from several threads: in Ogg and MP3 files
    seeks taken in another order land on other samples, so read those from one thread, in order."""

    def __init__(self, path: str | Path):
        self.path, self._local, self._handles, self._lock = path, threading.local(), [], threading.Lock()
        self.parallel = sf.info(path).format in PARALLEL_FORMATS

    def read(self, start: int, frames: int) -> np.ndarray:
        """``frames`` frames from ``start`` (fewer at the end of the file) as ``(frames, channels)`` float32."""
        handle = getattr(self._local, "file", None)
        if handle is None:
            handle = self._local.file = sf.SoundFile(self.path)
            with self._lock:
                self._handles.append(handle)
        handle.seek(start)
        return handle.read(frames, dtype="float32", always_2d=True)

    def close(self) -> None:
        with self._lock:
            for handle in self._handles:
                handle.close()
            self._handles.clear()

    def __enter__(self) -> SharedReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_blocks(
    path: str | Path, block: int, threads: int = DECODE_THREADS, then: Callable[[int, np.ndarray], object] | None = None
) -> Iterator:
    """The samples of ``path`` as ``(frames, channels)`` float32 arrays of ``block`` frames (the last one
    shorter), in order; with ``then``, ``then(start, block)`` instead (``start``: the block's first
    frame), computed in the decoding threads (in the caller's thread when read as one stream). FLAC,
    WAV and AIFF files are read ``threads`` blocks at a time; other formats, and files of unknown length,
    as one stream. The same samples either way."""
    then = then or (lambda start, data: data)
    info = sf.info(path)
    if info.format not in PARALLEL_FORMATS or threads < 2 or not 0 < info.frames < 2**62 or info.frames <= block:
        with sf.SoundFile(path) as f:
            for number, data in enumerate(f.blocks(blocksize=block, dtype="float32", always_2d=True)):
                yield then(number * block, data)
        return
    frames = info.frames

    def read(start: int):
        data = reader.read(start, block)
        if len(data) != min(block, frames - start):
            end = start + len(data)
            raise RuntimeError(f"the file ends at frame {end}, before the {frames} frames its header states")
        return then(start, data)

    with SharedReader(path) as reader:  # closed after the pool has finished with it
        yield from ordered_map(read, range(0, frames, block), threads)


def decode_to_float_wav(path: str | Path, wav: str | Path):
    """Decode ``path``, a file only FFmpeg reads (AAC), into the float WAV ``wav`` block by block (memory
    does not grow with the length; RF64 past 4 GiB); returns the WAV's ``sf.info``. Raises a one-line
    ``ConfigError`` when FFmpeg cannot read it or it holds no samples."""
    start = 0
    with ffmpeg.frames(path) as (rate, channels, blocks), FloatWavWriter(wav, rate, channels) as out:
        for block in blocks:
            out.write_at(start, block)
            start += len(block)
    if start == 0:
        raise ConfigError("the file holds no samples")
    return sf.info(wav)
