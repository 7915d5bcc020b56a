"""Clip-level detection after lossy coding: false positives on clean coded music, θ error on clipped coded music.

    nice python benchmarks/coded_detection.py --root data/music --split test --cache /work/runs/issue20

1. Every ``SPLIT/*/mixture.flac`` (whole tracks, or ``--seconds`` from the middle of each; stereo, at
   its own level, not clipped), encoded at MP3 128 kbps and Opus 96 kbps with libsndfile's encoders and
   AAC 128 kbps with FFmpeg's (PyAV), each into a file (``.mp3``; ``.opus``, 48 kHz as Opus stores it;
   ``.m4a``) and analysed from that file exactly as ``declip analyze FILE`` does (``analyze_file``:
   plateaus, then the coded estimate when none are found; ``declip restore`` takes the same measurement,
   block by block). A file is flagged when any channel's kind is not ``none``. Prints a line per file,
   then a table: files flagged per codec and kind (``hard``, ``hard-coded``: hard after lossy coding,
   ``soft``: saturated), and each flagged file with its kind and confidence. With ``--cache DIR`` the
   encoded files are kept under ``DIR/clean/`` and ``DIR/clipped/`` and reused (encoding is most of the
   time).
2. ``--excerpts`` seconds from the middle of each track, peak-normalised to 0.9, clipped at the
   ``--levels`` (input SDR, dB; default 1-20) and coded (``--codecs``: MP3 128k, Opus 96k, AAC 128k and
   uncoded), analysed the same way: the share detected as hard-clipped and the median and worst relative error of the
   level of every polarity found hard-clipped against θ times the encoder's gain (LAME scales by
   0.95; the RMS gain on a sine, printed).
"""

from __future__ import annotations

import argparse
import glob
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from declip.data.codecs import code, encode
from declip.detection.measurement import Measurement
from declip.inference.analysis import FileAnalysis, analyze_file, measure_array, read_audio
from declip.metrics import DEFAULT_LEVELS
from declip.physics import threshold_for_sdr

LEVELS = [int(v) for v in DEFAULT_LEVELS]  # input SDRs (dB), as the tables print them
CODECS = {"mp3": 128, "opus": 96, "aac": 128}
SUFFIX = {"mp3": ".mp3", "opus": ".opus", "aac": ".m4a", "none": ".flac"}
FLAGGED_KINDS = ("hard", "hard-coded", "soft")


def codec_gain(codec: str, rate: int = 44100) -> float:
    """The encoder's gain on a 997 Hz sine, RMS out over RMS in (the peak ratio adds the codec's noise)."""
    t = np.arange(rate * 2) / rate
    sine = np.repeat((0.5 * np.sin(2 * np.pi * 997 * t))[:, None], 2, 1).astype(np.float32)
    out = code(sine, rate, codec, CODECS[codec])[rate // 2 : -rate // 2]
    return float(np.sqrt(np.mean(out.astype(np.float64) ** 2) / np.mean(sine[rate // 2 : -rate // 2] ** 2.0)))


def found_levels(m: Measurement) -> list[float]:
    """The level of every polarity found hard-clipped: the plateaus' (``hard``), the pile-up's
    centre (``hard-coded``; the measurement's thresholds are the band's lower edge)."""
    levels = []
    for c, kind in enumerate(m.kinds):
        if kind == "hard":
            levels += [float(m.physics.high[c, 0]), -float(m.physics.low[c, 0])]
        elif kind == "hard-coded":
            levels += [p.level for p in (m.coded.high[c], m.coded.low[c]) if p.kind == "hard-coded"]
    return levels


def coded_file(x: np.ndarray, rate: int, codec: str, path: Path) -> Path:
    """``x`` ``(frames, channels)`` written to ``path`` encoded with ``codec`` (``none``: 24-bit FLAC),
    unless ``path`` exists (a cached copy); written beside it first, then renamed."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    if codec == "none":
        sf.write(partial, x, rate, subtype="PCM_24", format="FLAC")
    else:
        data, _ = encode(x, rate, codec, CODECS[codec])
        partial.write_bytes(data)
    partial.rename(path)
    return path


def read_middle(file: str, seconds: float) -> tuple[np.ndarray, int]:
    """``seconds`` from the middle of ``file`` (0: the whole file), ``(frames, channels)`` float32."""
    info = sf.info(file)
    frames = int(seconds * info.samplerate) or info.frames
    middle = max(info.frames // 2 - frames // 2, 0)
    return sf.read(file, dtype="float32", always_2d=True, start=middle, frames=frames)


def polarities(analysis: FileAnalysis, coded) -> str:
    """Per channel: kind and confidence; with the coded estimate, each polarity's pile-up ratio,
    tail index and peak (what the decision read)."""
    out = []
    for c in analysis.channels:
        text = f"ch{c.channel} {c.kind} {c.confidence:.2f}"
        if coded is not None:
            pair = (("+", coded.high[c.channel]), ("-", coded.low[c.channel]))
            shape = " ".join(f"{s} ratio {p.ratio:.2f} tail {p.tail_index:.3f} peak {p.peak:.3f}" for s, p in pair)
            text += f" [{shape}]"
        out.append(text)
    return "; ".join(out)


def kind_of(analysis: FileAnalysis) -> tuple[str, float]:
    """The strongest kind over the channels and its confidence (as ``declip analyze`` reports per channel)."""
    order = (*FLAGGED_KINDS, "none")
    kind = next(k for k in order if any(c.kind == k for c in analysis.channels))
    found = [c.confidence for c in analysis.channels if c.kind == kind]
    return kind, (min(found) if kind == "none" else max(found))


def clean_part(files: list[str], args: argparse.Namespace, cache: Path) -> None:
    rows = []
    for codec, kbps in ((c, k) for c, k in CODECS.items() if c in args.codecs):
        flagged: dict[str, list[str]] = {k: [] for k in FLAGGED_KINDS}
        for file in files:
            name = file.split("/")[-2]
            x, rate = read_middle(file, args.seconds)
            span = f"{args.seconds:g}s" if args.seconds else "whole"
            path = coded_file(x, rate, codec, cache / "clean" / f"{codec}{kbps}-{span}" / f"{name}{SUFFIX[codec]}")
            analysis, _, measurement = analyze_file(path, args.sensitivity)
            coded = measurement.coded if args.verbose else None
            kind, confidence = kind_of(analysis)
            print(f"  {codec} {name}: {kind} ({confidence:.2f}) {polarities(analysis, coded)}", flush=True)
            if kind != "none":
                flagged[kind].append(f"{name} ({confidence:.2f})")
        total = sum(len(v) for v in flagged.values())
        names = "; ".join(f"{k}: {', '.join(v)}" for k, v in flagged.items() if v)
        print(f"clean {codec} {kbps}k: {total}/{len(files)} flagged {names}", flush=True)
        rows.append((f"{codec} {kbps}k", total, flagged))
    header = "| coded | files | flagged | hard | hard after lossy coding | soft (saturated) | flagged (confidence) |"
    print(f"\n{header}\n|---|---|---|---|---|---|---|")
    for codec, total, flagged in rows:
        names = "; ".join(f"{k}: {', '.join(v)}" for k, v in flagged.items() if v) or "-"
        counts = " | ".join(str(len(flagged[k])) for k in FLAGGED_KINDS)
        print(f"| {codec} | {len(files)} | {total} | {counts} | {names} |")


def clipped_part(files: list[str], args: argparse.Namespace, cache: Path) -> None:
    gains = {"none": 1.0} | {codec: codec_gain(codec) for codec in CODECS if codec in args.codecs}
    print("encoder gains (sine):", {k: round(v, 4) for k, v in gains.items()})
    excerpts = {}
    for file in files:
        x, rate = read_middle(file, args.excerpts)
        excerpts[file] = (0.9 * x / np.abs(x).max(), rate)
    print("\n| codec | input SDR | detected hard | median θ error | worst θ error |\n|---|---|---|---|---|")
    for codec in [c for c in gains if c in args.codecs]:
        for level in args.levels:
            found, errors, missed = 0, [], []
            for file, (x, rate) in excerpts.items():
                name = file.split("/")[-2]
                theta = float(threshold_for_sdr(torch.from_numpy(x.T[None].copy()), level))
                clipped = np.clip(x, -theta, theta)
                folder = cache / "clipped" / f"{codec}{CODECS.get(codec, '')}-{args.excerpts:g}s" / f"{level}dB"
                audio, stored = read_audio(coded_file(clipped, rate, codec, folder / f"{name}{SUFFIX[codec]}"))
                m = measure_array(audio, stored, args.sensitivity)  # what analyze_file reports the kinds of
                if m.kind in ("hard", "hard-coded"):
                    found += 1
                    errors += [abs(found_level / (theta * gains[codec]) - 1) for found_level in found_levels(m)]
                else:
                    missed.append(f"{name} ({m.kind})")
            median = f"{100 * np.median(errors):.2f} %" if errors else "-"
            worst = f"{100 * np.max(errors):.2f} %" if errors else "-"
            print(f"| {codec} | {level} dB | {found}/{len(files)} | {median} | {worst} |", flush=True)
            if missed and args.verbose:
                print(f"  missed: {', '.join(missed)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/music")
    parser.add_argument("--split", default="test")
    parser.add_argument("--excerpts", type=float, default=20.0, help="seconds per track for the θ error (0: skip)")
    parser.add_argument("--levels", type=int, nargs="+", default=LEVELS, help="input SDRs (dB) of the θ error part")
    parser.add_argument("--codecs", nargs="+", default=["none", *CODECS], help="codecs of both parts")
    parser.add_argument("--sensitivity", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=0.0, help="clean part: this much from each middle (0: whole)")
    parser.add_argument("--clean", action=argparse.BooleanOptionalAction, default=True, help="run the clean part")
    parser.add_argument("--cache", type=Path, help="keep the encoded files here and reuse them (default: temporary)")
    parser.add_argument("--verbose", action="store_true", help="each polarity's pile-up ratio, tail index and peak")
    args = parser.parse_args()
    files = sorted(glob.glob(f"{args.root}/{args.split}/*/mixture.flac"))
    if not files:
        raise SystemExit(f"no {args.root}/{args.split}/*/mixture.flac; build it with: declip data build music")
    print(f"{len(files)} tracks of {args.root}/{args.split}, sensitivity {args.sensitivity}")
    start = time.time()
    with tempfile.TemporaryDirectory() as temporary:
        cache = (args.cache or Path(temporary)) / args.split
        if args.clean:
            clean_part(files, args, cache)
            print(f"({time.time() - start:.0f} s)")
        if args.excerpts > 0:
            clipped_part(files, args, cache)
            print(f"({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
