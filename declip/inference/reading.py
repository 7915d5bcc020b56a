"""Read an audio file in consecutive blocks, decoding several blocks at once where the format allows it.

Decoding FLAC is the slowest part of restoring a FLAC file on a GPU (docs/benchmarks.md). FLAC seeks are
sample-exact, so blocks can be decoded side by side, each thread with its own handle: libsndfile
releases the GIL while it decodes."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

PARALLEL_FORMATS = ("FLAC",)  # sample-exact seeks (MP3 and Ogg seeks are not guaranteed to be)
DECODE_THREADS = min(8, os.cpu_count() or 1)


def read_blocks(path: str | Path, block: int, threads: int = DECODE_THREADS) -> Iterator[np.ndarray]:
    """The samples of ``path`` as ``(frames, channels)`` float32 arrays of ``block`` frames (the last one
    shorter), in order. FLAC files are decoded ``threads`` blocks at a time; other formats, and FLAC
    files of unknown length, are read as one stream. The same samples either way."""
    info = sf.info(path)
    if info.format not in PARALLEL_FORMATS or threads < 2 or not 0 < info.frames < 2**62 or info.frames <= block:
        with sf.SoundFile(path) as f:
            yield from f.blocks(blocksize=block, dtype="float32", always_2d=True)
        return
    frames, local, handles = info.frames, threading.local(), []

    def read(start: int) -> np.ndarray:
        f = getattr(local, "file", None)
        if f is None:
            f = local.file = sf.SoundFile(path)
            handles.append(f)
        f.seek(start)
        data = f.read(block, dtype="float32", always_2d=True)
        if len(data) != min(block, frames - start):
            end = start + len(data)
            raise RuntimeError(f"the file ends at frame {end}, before the {frames} frames its header states")
        return data

    starts = iter(range(0, frames, block))
    pending: deque = deque()
    try:
        with ThreadPoolExecutor(threads) as pool:
            try:
                for start in starts:
                    pending.append(pool.submit(read, start))
                    if len(pending) == threads:
                        break
                while pending:
                    data = pending.popleft().result()
                    start = next(starts, None)
                    if start is not None:
                        pending.append(pool.submit(read, start))
                    yield data
            finally:  # stopped early or failed: drop the blocks not started, let running ones end
                for future in pending:
                    future.cancel()
    finally:
        for f in handles:
            f.close()
