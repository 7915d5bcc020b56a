"""One restoration as the page runs it: a model by reference, the clip level, the restored WAV.

The WAV is written by :func:`declip.inference.restore.restore_file` with the settings ``declip restore``
uses by default (device, precision, windows, 32-bit float), so the two give the same bytes."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from declip.app.clipping import ClippingSummary, summarise_clipping
from declip.data import ffmpeg
from declip.errors import ConfigError
from declip.inference.device import resolve_device
from declip.inference.loaded import LoadedModel
from declip.inference.reading import decode_to_float_wav
from declip.inference.restore import restore_file

MODELS_KEPT = 3  # loaded models kept in memory, the most recently used


@dataclass(frozen=True)
class Restoration:
    source: Path  # the uploaded file, or its samples decoded into a WAV when only FFmpeg reads it (AAC)
    output: Path  # the restored WAV
    account: str  # the line ``declip restore`` prints for the file
    clipping: ClippingSummary
    sample_rate: int
    seconds: float


def parse_level(text: str | float | None) -> float | None:
    """The clip level field: ``auto`` (or empty) detects it, else a positive value."""
    text = "auto" if text is None else str(text).strip()
    if text.lower() in ("", "auto"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(
            f"clip level {text!r} is neither 'auto' nor a number; type auto or a value such as 0.5"
        ) from None
    if not value > 0:
        raise ConfigError(f"clip level must be positive (or auto); got {text}")
    return value


class Restorer:
    """Restores uploaded files into folders under ``workdir``; models load once and stay cached."""

    def __init__(self, workdir: str | Path, device: str | None = None, precision: str = "auto"):
        self.workdir = Path(workdir)
        self.device = device or resolve_device("auto")  # as declip restore --device auto
        self.precision = precision
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def model(self, ref: str) -> LoadedModel:
        from declip.zoo import load_model

        ref = str(ref).strip()
        if not ref:
            raise ConfigError(
                "no model chosen; pick a zoo model or type a Hub reference ORG/NAME[@REVISION] or a folder"
            )
        with self._lock:
            if ref not in self._models:
                self._models[ref] = load_model(ref, device=self.device, precision=self.precision)
                while len(self._models) > MODELS_KEPT:
                    self._models.popitem(last=False)
            self._models.move_to_end(ref)
            return self._models[ref]

    def restore(
        self,
        source: str | Path,
        model: str,
        level: str | float | None = "auto",
        progress: Callable[[int, int], None] | None = None,
    ) -> Restoration:
        """Restore ``source`` with the model ``model`` at the clip level ``level`` (``auto`` or a value).
        Raises ``ConfigError`` with one line on bad input (the caller names the file)."""
        source = Path(source)
        threshold = parse_level(level)
        loaded = self.model(model)
        folder = self.workdir / uuid.uuid4().hex
        name = source.stem
        try:
            if ffmpeg.only_ffmpeg_reads(source):  # AAC: FFmpeg decodes it once; the page reads and plays that WAV
                folder.mkdir(parents=True)
                decoded = folder / f"{name}-decoded.wav"
                decode_to_float_wav(source, decoded)
                source = decoded
            clipping = summarise_clipping(source, threshold)
            output = folder / f"{name}-restored.wav"
            # the measurement the summary found: restore_file does not read the file again for it
            account = restore_file(
                source, output, loaded, threshold=threshold, progress=progress, measurement=clipping.measurement
            )
        except BaseException:  # a failed job leaves nothing in the work folder
            shutil.rmtree(folder, ignore_errors=True)
            raise
        info = sf.info(output)
        return Restoration(source, output, account, clipping, info.samplerate, info.frames / info.samplerate)
