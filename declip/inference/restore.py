"""``restore()``: declip a recording with a trained model; the function behind ``declip restore``."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from declip.data.ffmpeg import only_ffmpeg_reads
from declip.detection.measurement import Measurement, measure
from declip.detection.plateaus import ClipLevel, detect_clip_level_blocks
from declip.errors import ConfigError
from declip.inference.choice import SECONDS as CHOICE_SECONDS
from declip.inference.choice import Choice, choose_in
from declip.inference.estimate import network_estimate
from declip.inference.methods import RestoreMethod
from declip.inference.prefetch import ordered_map, prefetched
from declip.inference.reading import DECODE_THREADS, SharedReader, decode_to_float_wav, read_blocks
from declip.inference.wavwrite import FloatWavWriter
from declip.physics import ClipMasks, Clipping

SUBTYPES = ("FLOAT", "PCM_24", "PCM_16")
# network windows (seconds, windows per call) by device: the fastest measured (docs/benchmarks.md)
WINDOWS = {"cpu": (2.0, 16), "cuda": (10.0, 64)}
AS_LOADED = "the model's setting"  # the candidate kept when re-clipping finds no alternative better


def default_windows(device: torch.device | str) -> tuple[float, int]:
    """``(chunk_seconds, batch_size)`` for a model on ``device``."""
    return WINDOWS.get(torch.device(device).type, WINDOWS["cpu"])


@dataclass
class RestoreReport:
    clipped: bool
    high: list[float]
    low: list[float]
    clipped_fraction: float
    peak_in: float
    peak_out: float
    kind: str = "hard"  # see declip.detection.coded.KINDS; "given" for a level given by hand
    confidence: float = 1.0
    choice: Choice | None = None  # the setting re-clipping chose, when there were alternatives


def restore_array(
    audio: Tensor,
    sample_rate: int,
    model: RestoreMethod,
    threshold: float | None = None,
    chunk_seconds: float | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    alternatives: dict[str, RestoreMethod] | None = None,
    choice_seconds: float = CHOICE_SECONDS,
) -> tuple[Tensor, RestoreReport]:
    """Restore ``audio`` ``(channels, frames)`` at ``sample_rate``; returns the restored audio (same
    shape and rate) and a report. The clip level is detected per channel and polarity unless
    ``threshold`` is given (symmetric). Unclipped audio comes back unchanged. Reliable samples are
    kept bit-exact; clipped ones end at or beyond the level with the sign of the input. Network
    windows with cores of ``chunk_seconds`` run ``batch_size`` at a time (default: :func:`default_windows`); a
    model whose context is wide gets cores of :data:`~declip.inference.estimate.CONTEXT_SHARE` times it, fewer at a
    time. ``alternatives``: other settings of the model, by name; re-clipping the ``choice_seconds`` that tell the most
    picks one of them or ``model`` for the whole recording (:mod:`declip.inference.choice`; the report says which)."""
    chunk_seconds, batch_size = _windows(model, chunk_seconds, batch_size)
    audio = audio.float()
    if audio.shape[-1] == 0:
        raise ConfigError("the audio holds no samples")
    _check_finite(audio)
    physics, detected = _physics_for(threshold, audio.shape[0], lambda: [audio])
    measurement = measure(physics, detected, audio.shape[0], lambda: [audio], sample_rate)  # no plateaus: coded?
    physics, detected = measurement.physics, measurement.clipped
    view = measurement.level_view(audio)
    masks = physics.masks(view) if detected is not False else None
    clipped = bool(masks.clipped.any()) if detected is None else detected
    peak_in = float(audio.abs().max()) if audio.numel() else 0.0
    kind = (measurement.kind, measurement.confidence)
    if not clipped:
        levels = physics.high[:, 0].tolist(), physics.low[:, 0].tolist()
        return audio.clone(), RestoreReport(False, *levels, 0.0, peak_in, peak_in, *kind)
    choice = None
    if alternatives:
        candidates = {AS_LOADED: model, **alternatives}
        windows = chunk_seconds, batch_size
        choice = choose_in(lambda s, n: audio[:, s : s + n], audio.shape[-1], sample_rate, audio.shape[-1],
                           candidates, measurement, windows, choice_seconds)  # fmt: skip
        model = candidates[choice.name]
    y = measurement.input_for_network(view, masks)
    estimate = network_estimate(y, sample_rate, model, physics, chunk_seconds, batch_size, progress)
    restored = measurement.finish(physics.project(estimate, view, masks), audio, masks)
    report = RestoreReport(
        True, physics.high[:, 0].tolist(), physics.low[:, 0].tolist(),
        float(masks.clipped.float().mean()), peak_in, float(restored.abs().max()), *kind, choice,
    )  # fmt: skip
    return restored, report


BLOCK_SECONDS = 30.0
UNCOMPRESSED = ("PCM_16", "PCM_24", "PCM_32", "PCM_S8", "PCM_U8", "FLOAT", "DOUBLE")


def _uncompressed(info) -> bool:
    """Whether reading the file is a copy (WAV/AIFF PCM or float), not a decode worth doing once only."""
    return info.format in ("WAV", "WAVEX", "RF64", "W64", "AIFF") and info.subtype in UNCOMPRESSED


def _check_finite(block: Tensor) -> None:
    # one reduction first: a finite sum means finite samples (all but overflow, checked exactly)
    if not torch.isfinite(block.sum()) and not torch.isfinite(block).all():
        raise ConfigError("the audio has NaN or infinite samples; repair or remove them first")


def _physics_for(
    threshold: float | None, channels: int, blocks: Callable, level: ClipLevel | None = None
) -> tuple[Clipping, bool | None]:
    """The clipping operator: at ``threshold`` for every channel (see :meth:`Clipping.at_level`), else
    at the plateaus of ``level``, else at those detected in ``blocks`` (read once, or twice when needed)."""
    if threshold is None:
        if level is not None and level.high.shape[0] != channels:
            raise ConfigError(f"the clip level given is for {level.high.shape[0]} channel(s); the audio has {channels}")
        level = detect_clip_level_blocks(blocks) if level is None else level
        return Clipping(level.high, level.low), level.any
    if not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"threshold must be a positive finite number; got {threshold}")
    return Clipping.at_level(threshold, channels), None


def _device(model: RestoreMethod) -> torch.device:
    return torch.device(getattr(model, "device", "cpu"))  # a method written before ``device`` existed: the CPU


def _windows(model: RestoreMethod, chunk_seconds: float | None, batch_size: int | None) -> tuple[float, int]:
    default = default_windows(_device(model))
    chunk_seconds = default[0] if chunk_seconds is None else chunk_seconds
    batch_size = default[1] if batch_size is None else batch_size
    if chunk_seconds <= 0 or batch_size < 1:
        raise ConfigError(
            f"chunk_seconds must be positive and batch_size at least 1; got {chunk_seconds}, {batch_size}"
        )
    return chunk_seconds, batch_size


def _workers(model: RestoreMethod) -> int:
    """Blocks restored side by side: on a GPU the host work around the network (reading, masks,
    copies, writing) is the bottleneck and spreads over threads; on a CPU two, so that one block's
    reading, masks and writing overlap the other's network (docs/benchmarks.md)."""
    return min(8 if _device(model).type == "cuda" else 2, os.cpu_count() or 1)


def _to_device(data: np.ndarray, device: torch.device) -> Tensor:
    """``(frames, channels)`` samples as a ``(channels, frames)`` tensor on ``device`` (transposed there)."""
    if device.type == "cpu":
        return torch.from_numpy(data.T.copy())
    return torch.from_numpy(data).to(device).T.contiguous()


def _to_host(restored: Tensor) -> np.ndarray:
    """``(channels, frames)`` samples as a C-ordered ``(frames, channels)`` array, transposed on their device."""
    return restored.T.contiguous().cpu().numpy()


def restore_file(
    file: str | Path,
    target: str | Path,
    model: RestoreMethod,
    threshold: float | None = None,
    chunk_seconds: float | None = None,
    batch_size: int | None = None,
    subtype: str = "FLOAT",
    normalize: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    block_seconds: float = BLOCK_SECONDS,
    decode_threads: int = DECODE_THREADS,
    workers: int | None = None,
    level: ClipLevel | None = None,
    measurement: Measurement | None = None,
    alternatives: dict[str, RestoreMethod] | None = None,
    choice_seconds: float = CHOICE_SECONDS,
) -> str:
    """Restore the audio file ``file`` into the WAV file ``target``; returns a one-line account.

    Streams: the file is read in blocks of ``block_seconds`` (plus the model's context on each side)
    and written block by block, so memory does not grow with the file's length. When the file's
    rate is the model's, the result equals a one-pass restoration. Never writes over ``file`` or,
    without ``overwrite``, over an existing ``target``; writes temporary files and renames.
    ``subtype`` ``PCM_16``/``PCM_24`` with restored peaks above full scale needs ``normalize``
    (scale down, reported). A FLAC, WAV or AIFF file is read ``decode_threads`` blocks at a time; ``workers``
    blocks are restored side by side (default: 8 on a GPU, 2 on a CPU; one for an Ogg or MP3 source
    read as it is), each on the model's
    device from reading to writing. Network windows as in :func:`restore_array`. ``level``: the
    plateaus :func:`~declip.detection.plateaus.detect_clip_level_blocks` found in ``file``, when the
    caller has them already (``declip restore --adapt``): not detected again; ``threshold`` takes
    precedence. ``measurement``: the whole measurement, when the caller found it in this file (the web page's
    summary): neither detected nor estimated again; it takes precedence over both. ``alternatives`` and
    ``choice_seconds``: as in :func:`restore_array` (the file is scanned once more for the seconds that tell the most).
    Raises ``ConfigError`` on bad input."""
    file, target = Path(file), Path(target)
    chunk_seconds, batch_size = _windows(model, chunk_seconds, batch_size)
    _check_target(file, target, subtype, overwrite)
    info = _info(file)
    device = _device(model)
    temporary = _Temporaries.beside(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        readable = file
        if info is None:  # a format libsndfile cannot open (AAC): FFmpeg decodes it once, into a float WAV
            info, readable = decode_to_float_wav(file, temporary.decoded), temporary.decoded
        rate, channels = info.samplerate, info.channels
        model_rate = model.sample_rate or rate
        align = model.hop if rate == model_rate else 1
        block = math.ceil(block_seconds * rate / align) * align
        # compressed input is decoded once, into a float WAV that the later passes read
        decoded = temporary.decoded if threshold is None and not _uncompressed(info) else None
        source = _Source(readable, info, decoded, block, decode_threads, device)
        measurement, path = _measure(source, channels, threshold, level, measurement)
        frames = info.frames if path == readable else sf.info(path).frames  # a decoder's count can be an estimate
        chosen = ""
        if alternatives and measurement.clipped is not False:
            model, chosen = _chosen(path, frames, rate, block, device, model, alternatives, measurement,
                                    (chunk_seconds, batch_size), choice_seconds)  # fmt: skip
        reach = (model.context + model.hop) * rate / model_rate + 64 + measurement.physics.context  # learned masks' too
        margin = math.ceil(reach / align) * align
        restorer = _BlockRestorer(
            model, measurement, measurement.physics.to(device), rate, frames, block, margin, chunk_seconds, batch_size,
            device, check_finite=not source.checked,
        )  # fmt: skip
        with SharedReader(path) as reader, FloatWavWriter(temporary.restored, rate, channels) as out:
            tally = restorer.restore(reader, out, workers or _workers(model), progress)
        peak, scaled = _write(temporary, target, subtype, normalize, overwrite, tally.peak_out, block)
    except (OSError, sf.LibsndfileError) as error:
        raise ConfigError(f"cannot write {target} ({error})") from error
    finally:
        temporary.remove()
    note = "" if tally.clipped else "nothing clipped: copied unchanged; "
    note = "not restored (saturation): copied unchanged; " if measurement.kind == "soft" else note
    physics = measurement.physics.to("cpu")
    levels = ", ".join(f"+{h:.4f}/{lo:.4f}" for h, lo in zip(physics.high[:, 0].tolist(), physics.low[:, 0].tolist()))
    share = 100 * tally.clipped / (frames * channels)
    account = f"{note}{scaled}clip levels {levels}, {share:.2f} % clipped, peak {tally.peak_in:.3f} -> {peak:.3f}"
    return f"{measurement.describe()}; {chosen}{account}"


def _chosen(
    path: Path, frames: int, rate: int, block: int, device: torch.device, model: RestoreMethod,
    alternatives: dict[str, RestoreMethod], measurement: Measurement, windows: tuple[float, int], seconds: float,
) -> tuple[RestoreMethod, str]:  # fmt: skip
    """The candidate re-clipping picks for the file at ``path``, and a note of the choice for its line."""
    candidates = {AS_LOADED: model, **alternatives}
    with SharedReader(path) as reader:
        choice = choose_in(lambda start, count: _to_device(reader.read(start, count), device), frames, rate, block,
                           candidates, measurement, windows, seconds)  # fmt: skip
    return candidates[choice.name], f"{choice.describe()}; "


def _check_target(file: Path, target: Path, subtype: str, overwrite: bool) -> None:
    if subtype not in SUBTYPES:
        raise ConfigError(f"subtype must be one of {SUBTYPES}; got {subtype!r}")
    if target.resolve() == file.resolve():
        raise ConfigError("the output would overwrite the input; choose another output path")
    if target.suffix.lower() != ".wav":
        raise ConfigError(f"{target}: outputs are WAV files; name it with .wav")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --overwrite to replace it")


def _info(file: Path):
    """libsndfile's ``sf.info``; ``None`` when only FFmpeg reads the file (AAC). ``ConfigError`` when
    neither does, or it holds no samples."""
    if only_ffmpeg_reads(file):
        return None
    info = sf.info(file)
    if info.frames <= 0:
        raise ConfigError("the file holds no samples")
    return info


@dataclass(frozen=True)
class _Temporaries:
    """The files written beside the target while restoring; :meth:`remove` deletes whichever exist."""

    restored: Path  # the restored blocks, float WAV
    converted: Path  # the restored audio in a PCM subtype
    decoded: Path  # a compressed input, decoded once

    @classmethod
    def beside(cls, target: Path) -> _Temporaries:
        stem = f".{target.name}.{os.getpid()}"
        return cls(*(target.with_name(f"{stem}.{kind}") for kind in ("float.tmp", "tmp", "input.tmp")))

    def remove(self) -> None:
        for path in (self.converted, self.restored, self.decoded):
            with contextlib.suppress(OSError):  # a parent that is not a folder: nothing was written there
                path.unlink(missing_ok=True)


class _Source:
    """The input file, read in passes of blocks of ``block`` frames: ``(channels, frames)`` tensors on
    ``device``, every sample checked finite. A compressed file (``decoded`` given) is decoded once: the
    first whole pass also writes its samples to the float WAV ``decoded``, which later passes and the
    restoration read instead (:attr:`path`)."""

    def __init__(self, file: Path, info, decoded: Path | None, block: int, threads: int, device: torch.device):
        self.path, self.checked = file, False  # checked: a whole pass was read, every sample is finite
        self._pending, self._info, self._block, self._threads, self._device = decoded, info, block, threads, device

    @property
    def rate(self) -> int:
        return self._info.samplerate

    def blocks(self) -> Iterator[Tensor]:
        """One pass over the samples, read a block ahead in a background thread."""
        return prefetched(self._pass())

    def settled(self) -> Path:
        """Where the restoration reads the samples: the decoded copy (decoded now if no pass has read
        the file yet), or the file itself."""
        if self._pending is not None:
            for _ in self.blocks():
                pass
        return self.path

    def _pass(self) -> Iterator[Tensor]:
        decoded = self._pending
        with contextlib.ExitStack() as stack:
            copy = None
            if decoded is not None:
                copy = stack.enter_context(FloatWavWriter(decoded, self._info.samplerate, self._info.channels))

            def prepare(start: int, data: np.ndarray) -> Tensor:  # in the decoding thread
                if copy is not None:
                    copy.write_at(start, data)
                chunk = _to_device(data, self._device)
                _check_finite(chunk)
                return chunk

            yield from read_blocks(self.path, self._block, self._threads, then=prepare)
        if decoded is not None:  # whole and closed: from now on the copy is read
            self.path, self._pending = decoded, None
        self.checked = True


def _measure(
    source: _Source, channels: int, threshold: float | None, level: ClipLevel | None, found: Measurement | None
) -> tuple[Measurement, Path]:
    """The measurement to restore under (``found``, else see :func:`_physics_for`; no plateaus: the coded
    estimate, more passes, see :func:`~declip.detection.measurement.measure`) and the path the restoration reads."""
    try:
        if found is not None:
            return found, source.settled()
        physics, detected = _physics_for(threshold, channels, source.blocks, level)
        measurement = measure(physics, detected, channels, source.blocks, source.rate)  # no plateaus: coded?
        return measurement, source.settled()
    except (sf.LibsndfileError, RuntimeError) as error:
        raise ConfigError(f"unreadable audio ({error})") from error


@dataclass(frozen=True)
class _Tally:
    clipped: int  # samples at or beyond the clip levels, over every channel
    peak_in: float
    peak_out: float


@dataclass(frozen=True)
class _BlockRestorer:
    """Restores a file's ``frames`` in blocks of ``block`` frames, each from a window with ``margin``
    frames of context on either side, under ``measurement`` (its operator on ``device``: ``physics``)."""

    model: RestoreMethod
    measurement: Measurement
    physics: Clipping
    rate: int
    frames: int
    block: int
    margin: int
    chunk_seconds: float
    batch_size: int
    device: torch.device
    check_finite: bool  # no pass has checked every sample yet

    def restore(
        self, reader: SharedReader, out: FloatWavWriter, workers: int, progress: Callable[[int, int], None] | None
    ) -> _Tally:
        """Restore the samples ``reader`` reads into ``out``, ``workers`` blocks side by side."""
        starts = range(0, self.frames, self.block)
        clipped, peak_in, peak_out = 0, 0.0, 0.0
        with contextlib.closing(  # Ogg and MP3 sources read in order, by one worker
            ordered_map(lambda start: self._restore(reader, out, start), starts, workers if reader.parallel else 1)
        ) as blocks:
            for number, (count, block_peak_in, block_peak_out) in enumerate(blocks):
                clipped += count
                peak_in, peak_out = max(peak_in, block_peak_in), max(peak_out, block_peak_out)
                if progress is not None:
                    progress(number + 1, len(starts))
        return _Tally(clipped, peak_in, peak_out)

    def _restore(self, reader: SharedReader, out: FloatWavWriter, start: int) -> tuple[int, float, float]:
        """Block ``start``: restored and written; its clipped samples and peaks in and out. In a worker thread."""
        stop = min(start + self.block, self.frames)
        first, last = max(start - self.margin, 0), min(stop + self.margin, self.frames)
        window = _to_device(reader.read(first, last - first), self.device)
        y = window[:, start - first : stop - first]
        if self.check_finite:
            _check_finite(window)
        # masks of the whole window, then the block's: a learned mask sees the same context as in one pass
        view = self.measurement.level_view(window, first)
        window_masks = self.physics.masks(view)
        inner = slice(start - first, stop - first)
        masks = ClipMasks(window_masks.high[:, inner], window_masks.low[:, inner])
        count = int(torch.count_nonzero(masks.high)) + int(torch.count_nonzero(masks.low))
        restored = y
        if count and self.measurement.clipped is not False:
            network_input = self.measurement.input_for_network(view, window_masks)
            estimate = network_estimate(
                network_input, self.rate, self.model, self.physics, self.chunk_seconds, self.batch_size,
                span=(start - first, stop - first),
            )  # fmt: skip
            projected = self.physics.project(estimate[:, inner], view[:, inner], masks)
            restored = self.measurement.finish(projected, y, masks, start)
        out.write_at(start, _to_host(restored))
        return count, float(y.abs().max()), float(restored.abs().max())


def _write(
    temporary: _Temporaries, target: Path, subtype: str, normalize: bool, overwrite: bool, peak: float, block: int
) -> tuple[float, str]:
    """Publish the restored float WAV as ``target`` in ``subtype``, scaled down to fit a PCM subtype if
    ``normalize``; returns the output's peak and a note of the scaling."""
    if subtype == "FLOAT":
        _publish(temporary.restored, target, overwrite)
        return peak, ""
    gain, note = 1.0, ""
    if peak > 1.0:
        if not normalize:
            raise ConfigError(
                f"restored peaks reach {peak:.3f}, above full scale for {subtype}: "
                "keep --subtype FLOAT (the default) or add --normalize"
            )
        gain = 0.999 / peak
        note = f"scaled by {20 * np.log10(gain):.2f} dB to fit {subtype}; "
    with (
        sf.SoundFile(temporary.restored) as f,
        sf.SoundFile(temporary.converted, "w", f.samplerate, f.channels, subtype, format="WAV") as out,
    ):
        for data in f.blocks(blocksize=block, dtype="float32", always_2d=True):
            out.write(data * gain)
    _publish(temporary.converted, target, overwrite)
    return peak * gain, note


def _publish(written: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished ``written`` to ``target``; without ``overwrite`` never replace a file that
    appeared meanwhile (another run writing the same output): a hard link fails if ``target`` exists."""
    if overwrite:
        os.replace(written, target)
        return
    try:
        os.link(written, target)
    except FileExistsError:
        raise ConfigError(f"{target} appeared while restoring (another run wrote it); kept it, wrote nothing") from None
    except OSError:  # a file system without hard links: claim the name exclusively, then rename over the claim
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise ConfigError(
                f"{target} appeared while restoring (another run wrote it); kept it, wrote nothing"
            ) from None
        os.replace(written, target)
        return
    written.unlink()
