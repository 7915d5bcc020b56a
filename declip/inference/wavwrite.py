"""A 32-bit float WAV file written at any frame, from any number of threads.

Restored blocks are computed side by side (``declip.inference.restore``), so each writes its own
frames with ``os.pwrite`` instead of waiting its turn at a sequential writer. The header is written
on closing, when the length is known: RIFF/WAVE up to 4 GiB, RF64 beyond (its ``ds64`` chunk takes
the place a ``JUNK`` chunk holds in the smaller file, so the samples never move)."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import numpy as np

IEEE_FLOAT, EXTENSIBLE = 3, 0xFFFE
FLOAT_GUID = bytes.fromhex("0300000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
RIFF_LIMIT = 2**32 - 1


class FloatWavWriter:
    """``write_at(frame, data)`` puts ``data`` ``(frames, channels)`` at ``frame``; ``close()`` writes the
    header for the frames up to the furthest one written. Mono and stereo files use the plain IEEE
    float format tag, more channels ``WAVE_FORMAT_EXTENSIBLE`` (no channel mask)."""

    def __init__(self, path: str | Path, sample_rate: int, channels: int, riff_limit: int = RIFF_LIMIT):
        self.path, self.sample_rate, self.channels, self.riff_limit = Path(path), sample_rate, channels, riff_limit
        self._fmt = self._format_chunk()
        self.data_offset = 12 + (8 + 28) + len(self._fmt) + (8 + 4) + 8  # RIFF, JUNK/ds64, fmt, fact, data
        self._frames, self._lock = 0, threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.pwrite(self._fd, b"\0" * self.data_offset, 0)

    def _format_chunk(self) -> bytes:
        block_align = 4 * self.channels
        common = struct.pack("<IIHH", self.sample_rate, self.sample_rate * block_align, block_align, 32)
        if self.channels <= 2:
            body = struct.pack("<HH", IEEE_FLOAT, self.channels) + common + struct.pack("<H", 0)
        else:
            body = struct.pack("<HH", EXTENSIBLE, self.channels) + common
            body += struct.pack("<HHI", 22, 32, 0) + FLOAT_GUID
        return b"fmt " + struct.pack("<I", len(body)) + body

    def write_at(self, frame: int, data: np.ndarray) -> None:
        data = np.ascontiguousarray(data, dtype="<f4")
        if data.ndim != 2 or data.shape[1] != self.channels:
            raise ValueError(f"expected (frames, {self.channels}) samples; got {data.shape}")
        view, offset = memoryview(data).cast("B"), self.data_offset + 4 * self.channels * frame
        while view:  # one pwrite may write less than asked
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written
        with self._lock:
            self._frames = max(self._frames, frame + len(data))

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            data_bytes = 4 * self.channels * self._frames
            riff_bytes = self.data_offset - 8 + data_bytes
            if riff_bytes <= self.riff_limit:
                head = b"RIFF" + struct.pack("<I", riff_bytes) + b"WAVE" + b"JUNK" + struct.pack("<I", 28) + bytes(28)
                sizes = (self._frames, data_bytes)
            else:
                ds64 = struct.pack("<QQQI", riff_bytes, data_bytes, self._frames, 0)
                head = b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"ds64" + struct.pack("<I", 28) + ds64
                sizes = (0xFFFFFFFF, 0xFFFFFFFF)
            fact = b"fact" + struct.pack("<II", 4, sizes[0])
            header = head + self._fmt + fact + b"data" + struct.pack("<I", sizes[1])
            assert len(header) == self.data_offset
            os.pwrite(self._fd, header, 0)
            os.ftruncate(self._fd, self.data_offset + data_bytes)
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FloatWavWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
