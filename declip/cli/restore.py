"""``declip restore INPUT... -o OUT [--model REF] [--method model|aspade]``: restore clipped recordings."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any, NamedTuple

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from declip.data import ffmpeg
from declip.data.audio_files import AUDIO_EXTENSIONS, LOSSY_EXTENSIONS, find_inputs
from declip.detection.plateaus import ClipLevel
from declip.errors import ConfigError
from declip.inference.device import resolve_device
from declip.inference.overrides import alternatives, overridden, parse_overrides
from declip.inference.precision import PRECISIONS
from declip.inference.restore import SUBTYPES, restore_file
from declip.zoo.registry import DEFAULT_MODEL


def _inputs(paths: list[str]) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """``(file, name relative to its input folder)`` for every input audio file, and the failures."""
    # restore_file reads files, not archive members; libsndfile's formats and FFmpeg's (AAC)
    found, failures = find_inputs(paths, archives=False, extensions=AUDIO_EXTENSIONS + ffmpeg.FFMPEG_EXTENSIONS)
    return [(Path(source.path), relative) for source, relative in found], failures


def _output_for(relative: Path, out: str, many: bool) -> Path:
    """``OUT/<input path below its folder>.wav`` when OUT is a folder (or several inputs, or a path
    with no suffix, which becomes a folder), else OUT."""
    if many or Path(out).is_dir() or out.endswith(("/", os.sep)) or not Path(out).suffix:
        return Path(out) / relative.with_suffix(".wav")
    return Path(out)


def _method(method: str, model: str, device: str, precision: str = "auto", overrides: dict | None = None):
    if method == "aspade":
        from declip.inference.methods import ASPADEMethod

        return ASPADEMethod(device=device)
    if method == "spline":
        from declip.inference.methods import SplineMethod

        return SplineMethod()
    from declip.zoo import load_model

    loaded = load_model(model, device=device, precision=precision)
    if not overrides:
        return loaded
    try:
        return overridden(loaded, overrides)
    except ConfigError as error:
        raise ConfigError(f"--override {error}") from None


def _alternatives(model: str, device: str, precision: str, overrides: dict, choices: list[dict]) -> dict:
    """The model with each of ``choices`` (on top of ``overrides``), by ``NAME=VALUE``: the settings re-clipping
    may pick instead of the model's own for each file."""
    from declip.zoo import load_model

    try:
        return alternatives(lambda: load_model(model, device=device, precision=precision), overrides, choices)
    except ConfigError as error:
        raise ConfigError(f"--choose {error}") from None


class _Adapted(NamedTuple):
    """The model to restore a file with, a note for its line, whether Ctrl-C stopped the adaptation, and
    the plateaus found in the file while adapting (restoring it takes them: detected once per file)."""

    model: Any
    note: str = ""
    interrupted: bool = False
    level: ClipLevel | None = None


def _adapted(model, file: Path, steps: int, threshold: float | None) -> _Adapted:
    """``model`` fine-tuned on ``file`` for ``steps`` steps. The clip level is ``threshold`` when given,
    else detected; nothing clipped: no adaptation."""
    from declip.data.recordings import PLATEAUS_ONLY, scan_recordings
    from declip.training.adapt import AdaptSettings, adapt

    if ffmpeg.only_ffmpeg_reads(file):  # adaptation reads its recordings through libsndfile
        raise ConfigError(
            f"--adapt reads WAV, FLAC, Ogg, Opus and MP3 files, not {file.suffix or 'this format'}; "
            "restore it without --adapt, or convert it to FLAC first"
        )
    recordings, failures = scan_recordings([file], threshold)
    if failures:
        raise ConfigError(failures[0][1])
    recording = recordings[0]
    if not bool(recording.clipped.any()):
        lossy = file.suffix.lower() in LOSSY_EXTENSIONS  # restoring it may still find clipping after coding
        note = f"not adapted: no plateaus found ({PLATEAUS_ONLY}); " if lossy else "not adapted: no clipping found; "
        return _Adapted(model, note, False, recording.level)
    adapted, report = adapt(model, recordings, AdaptSettings.per_file(steps), progress=False)
    if not report.adapted:  # stopped during warm-up: restore with the base model, and say so
        note = f"not adapted: stopped by Ctrl-C after {report.steps} step(s), base model used; "
        return _Adapted(model, note, True, recording.level)
    stopped = " (stopped by Ctrl-C)" if report.interrupted else ""
    note = f"adapted {report.steps} steps in {report.seconds:.0f} s{stopped}; "
    return _Adapted(adapted, note, report.interrupted, recording.level)


def run_restore(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="declip restore", description="Restore clipped recordings.")
    parser.add_argument("inputs", nargs="+", help="audio files or folders (searched recursively)")
    parser.add_argument("-o", "--out", required=True, help="output folder, or a file for a single input")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL,
        help=f"zoo name, ORG/NAME[@REVISION] on the Hub, model folder or .ckpt (default: {DEFAULT_MODEL})",
    )  # fmt: skip
    parser.add_argument(
        "--method", default="model", choices=("model", "aspade", "spline"),
        help="model: a trained declipper (--model); aspade: the A-SPADE baseline (slow, no training); "
        "spline: cubic interpolation of each clipped run (fast, no training)",
    )  # fmt: skip
    parser.add_argument("--threshold", default="auto", help="clip level: auto (detected) or a value")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS,
        help="auto: bfloat16 where the device runs it natively and the model agrees with float32, else float32",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-seconds", type=float,
        help="network window's core (s); default 2 on a CPU, 10 on a GPU; at least 4 times a model's context",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, help="windows per network call; default 16 on a CPU, 64 on a GPU")
    parser.add_argument("--subtype", default="FLOAT", choices=SUBTYPES, help="output WAV sample format")
    parser.add_argument("--normalize", action="store_true", help="scale down to fit a PCM subtype")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--adapt", type=int, default=0, metavar="N",
        help="first fine-tune the model for N steps on each file itself (self-supervised: re-clipping anchored to "
        "the model's own restoration; on SQAM better on average at every clip level, not on every file)",
    )  # fmt: skip
    parser.add_argument(
        "--override", action="append", default=[], metavar="NAME=VALUE",
        help="change a setting of the model's backbone that needs no training, same weights (repeatable; VALUE as "
        "YAML), e.g. probe_iterations=0 for unfolded-music-reclip: game music 1.8x to 7x faster as measured, solo "
        "voices about 2 dB worse (docs/guide.md)",
    )  # fmt: skip
    parser.add_argument(
        "--choose", action="append", default=[], metavar="NAME=VALUE",
        help="another setting of the model's backbone (repeatable; VALUE as YAML): for each file, re-clipping the 6 s "
        "that tell the most picks it or the model's own (no clean audio), e.g. probe_iterations=0 for "
        "unfolded-music-reclip; costs each setting once more on those seconds (docs/guide.md)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for flag, given in (("--override", args.override), ("--choose", args.choose)):
        if given and args.method != "model":
            parser.error(f"{flag} changes a trained model's settings; it does not apply to --method aspade or spline")
    if args.choose and args.adapt:
        parser.error("--choose picks among the model's settings as trained; it does not apply with --adapt")
    try:
        overrides = parse_overrides(args.override)
    except ConfigError as error:
        parser.error(f"--override {error}")
    try:
        choices = [parse_overrides([pair]) for pair in args.choose]  # one setting each, a name may recur
    except ConfigError as error:
        parser.error(f"--choose {error}")
    if args.adapt and args.method != "model":
        parser.error("--adapt fine-tunes a trained model; it does not apply to --method aspade")
    if args.adapt < 0:
        parser.error("--adapt takes a number of steps (0: no adaptation)")
    bad_batch = args.batch_size is not None and args.batch_size < 1
    if bad_batch or (args.chunk_seconds is not None and args.chunk_seconds <= 0):
        parser.error("--batch-size must be at least 1 and --chunk-seconds positive")
    if args.threshold != "auto":  # checked once, before the model loads
        try:
            good = math.isfinite(float(args.threshold)) and float(args.threshold) > 0
        except ValueError:
            good = False
        if not good:
            parser.error(f"--threshold must be 'auto' or a positive number (the clip level); got {args.threshold!r}")
    try:
        device = resolve_device(args.device)
    except ConfigError as error:
        parser.error(str(error))
    model = _method(args.method, args.model, device, args.precision, overrides)
    alternatives = _alternatives(args.model, device, args.precision, overrides, choices) if choices else None
    files, failures = _inputs(args.inputs)
    many = len(files) > 1 or len(args.inputs) > 1 or any(Path(i).is_dir() for i in args.inputs)
    restored = 0
    inputs = {file.resolve() for file, _ in files}
    claimed: dict[Path, Path] = {}
    threshold = None if args.threshold == "auto" else float(args.threshold)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    settled, stopped = 0, None  # files restored or failed so far
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(Progress(*columns, transient=True))
        stack.enter_context(_stop_on_signals())
        try:
            for position, (file, relative) in enumerate(files):
                target = _output_for(relative, args.out, many)
                task = bar.add_task(file.name, total=None)
                written = False
                try:
                    if target.resolve() in inputs:
                        raise ConfigError(f"the output {target} is an input file; choose another output folder")
                    if target.resolve() in claimed:
                        raise ConfigError(
                            f"{claimed[target.resolve()]} already writes {target}; restore them separately"
                        )
                    claimed[target.resolve()] = file
                    if target.exists() and not args.overwrite:  # before minutes of adaptation, not after
                        raise ConfigError(f"{target} exists; pass --overwrite to replace it")
                    adapted = _adapted(model, file, args.adapt, threshold) if args.adapt else _Adapted(model)
                    account = adapted.note + restore_file(
                        file, target, adapted.model, threshold=threshold,
                        chunk_seconds=args.chunk_seconds, batch_size=args.batch_size, subtype=args.subtype,
                        normalize=args.normalize, overwrite=args.overwrite,
                        progress=lambda done, total, task=task: bar.update(task, completed=done, total=total),
                        level=adapted.level, alternatives=alternatives,
                    )  # fmt: skip
                    written = True
                    bar.console.print(f"{file} -> {target}: {account}", soft_wrap=True, highlight=False)
                    restored += 1
                    if adapted.interrupted:  # Ctrl-C ends the batch: this file is done with what was learnt
                        failures += [(str(f), "not restored: stopped by Ctrl-C") for f, _ in files[position + 1 :]]
                        break
                except Exception as error:  # whatever one file raises, the batch goes on
                    failures.append((str(file), str(error) if isinstance(error, ConfigError) else _one_line(error)))
                    if not written and claimed.get(target.resolve()) == file:  # it wrote nothing: the name is free
                        del claimed[target.resolve()]
                bar.remove_task(task)
                settled = position + 1
        except _Stopped as signal_stop:  # SIGTERM or Ctrl-C: temp files are gone (restore_file's finally)
            stopped = signal_stop
            failures += [(str(f), f"not restored: stopped by {stopped.name}") for f, _ in files[settled:]]
    print(f"restored {restored} file(s), {len(failures)} failed")
    for name, reason in failures:
        print(f"declip: error: {name}: {reason}", file=sys.stderr)
    if stopped is not None:
        return 128 + stopped.signum
    return 1 if failures else 0


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT during a batch: unwinds like Ctrl-C (temporary files removed), then the summary."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum, self.name = signum, signal.Signals(signum).name


@contextlib.contextmanager
def _stop_on_signals():
    """Turn SIGTERM and SIGINT into :class:`_Stopped` while the batch runs (main thread only)."""

    def stop(signum, frame):
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
