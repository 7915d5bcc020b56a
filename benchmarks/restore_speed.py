"""Speed and peak memory of ``declip restore`` on stereo 44.1 kHz audio of several lengths.

    python benchmarks/restore_speed.py [--model REF] [--method model|aspade] [--minutes 1 10 60] \
        [--source FILE] [--input-sdr 5] [--device cpu|cuda] [--precision auto|fp32|bf16] \
        [--chunk-seconds S] [--batch-size B] [--format flac|wav|mp3] [--decode-threads N] [--workers N] \
        [--repeat N] [--network] [--override NAME=VALUE] [--choose NAME=VALUE]

The audio is a real recording (``--source``: once, or looped and cut to each of ``--minutes``) or
tones (1 minute unless ``--minutes``), clipped at ``--input-sdr`` dB and written to a temporary FLAC
(or WAV) by this process. Each length is then restored to a WAV with :func:`declip.restore` in a
fresh process, whose peak RSS is the restore's alone (``--repeat N``: N times in that process, a row
each; the later rows are a warm process's). The input is read ``--decode-threads`` blocks at a time
and ``--workers`` blocks are restored side by side (default for both: the restore's own).
``--model`` takes any reference ``declip restore`` takes (default: the zoo's default model); ``--override`` and
``--choose`` (repeatable) are ``declip restore``'s: a backbone setting changed, and another that re-clipping may pick
for the file (its choice is printed under the row, its cost counted in the wall time).

``--network`` times the network alone instead: batches of ``--batch-size`` windows of
``--chunk-seconds`` (plus the model's context) through the model, as the restore runs them, with no
file, detection or projection; its real-time factor counts stereo audio (two windows per second of
a mono model's input, as a stereo restore feeds it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from declip.inference.restore import default_windows
from declip.zoo.registry import DEFAULT_MODEL


def make_input(path: Path, minutes: float | None, source: str | None, input_sdr: float) -> float:
    """Write ``minutes`` of stereo 44.1 kHz audio (``None``: the source once) clipped at ``input_sdr`` dB (FLAC,
    WAV or MP3 from ``path``'s suffix: an MP3 takes the coded path, level and masks estimated); returns its
    seconds."""
    import torch

    from declip.physics import threshold_for_sdr

    rate = 44100
    if source:
        base, base_rate = sf.read(source, dtype="float32", always_2d=True)
        assert base_rate == rate, "use a 44.1 kHz source"
        base = base[:, :2] if base.shape[1] >= 2 else np.repeat(base, 2, 1)
    else:
        t = np.arange(rate * 10) / rate
        base = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1).astype(np.float32) * 0.5
    theta = float(threshold_for_sdr(torch.from_numpy(base[: rate * 30].T.copy())[None], input_sdr)[0])
    frames = len(base) if minutes is None else int(minutes * 60 * rate)
    subtype = "MPEG_LAYER_III" if path.suffix == ".mp3" else "PCM_24"
    with sf.SoundFile(path, "w", rate, 2, subtype=subtype) as f:  # the format follows the suffix
        for start in range(0, frames, len(base)):
            f.write(np.clip(base[: frames - start], -theta, theta))
    return frames / rate


def one_run(args: argparse.Namespace) -> dict:
    """Restore ``args.one`` ``args.repeat`` times in this (fresh) process; its peak memory is the
    restores' alone. ``seconds``: the time of each restore."""
    import declip
    from declip.cli.restore import _alternatives, _method
    from declip.inference.overrides import parse_overrides

    overrides = parse_overrides(args.override)
    loaded = _method(args.method, args.model, args.device, args.precision, overrides)
    options = {"chunk_seconds": args.chunk_seconds or None, "batch_size": args.batch_size or None}  # None: the device's
    if args.choose:
        choices = [parse_overrides([pair]) for pair in args.choose]
        options["alternatives"] = _alternatives(args.model, args.device, args.precision, overrides, choices)
    if args.decode_threads:
        options["decode_threads"] = args.decode_threads
    if args.workers:
        options["workers"] = args.workers
    seconds, chosen = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        output = args.one.with_name(args.one.stem + ".out.wav")
        account = declip.restore(args.one, loaded, output=output, overwrite=True, **options)
        seconds.append(time.perf_counter() - start)
        chosen += [part for part in account.split("; ") if " by re-clipping " in part]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    precision = getattr(loaded, "precision", "fp32")
    return {"seconds": seconds, "peak_mb": peak_mb, "precision": precision, "choices": chosen}


def network_only(args: argparse.Namespace, repeats: int = 20) -> None:
    """Time the model on batches of windows as :func:`declip.restore` feeds it, nothing else."""
    import torch

    from declip.inference.precision import autocast
    from declip.physics import Clipping
    from declip.zoo import load_model

    loaded = load_model(args.model, device=args.device, precision=args.precision)
    default = default_windows(args.device)
    args.chunk_seconds, args.batch_size = args.chunk_seconds or default[0], args.batch_size or default[1]
    rate = loaded.sample_rate or 44100
    hop = loaded.hop
    window = -(-int(args.chunk_seconds * rate) // hop) * hop + 2 * (-(-loaded.context // hop) * hop)
    gen = torch.Generator().manual_seed(0)
    y = (torch.randn(args.batch_size, loaded.channels, window, generator=gen) * 0.3).to(args.device)
    theta = torch.full((args.batch_size, 1, 1), 0.3, device=args.device)
    physics = Clipping(theta, -theta)
    y = physics(y)

    def sync() -> None:
        if args.device == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode(), autocast(args.device, loaded.precision):
        for _ in range(3):
            loaded.model(y, physics)
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            loaded.model(y, physics)
        sync()
        seconds = (time.perf_counter() - start) / repeats
    windows_per_second = 2 if loaded.channels == 1 else 1  # of stereo audio: one per channel for a mono model
    stereo_seconds = args.batch_size * args.chunk_seconds / windows_per_second
    print(
        f"network only: {args.batch_size} windows of {args.chunk_seconds:g} s (+ context: {window} samples), "
        f"{loaded.precision}, {args.device}: {seconds * 1000:.2f} ms per batch, "
        f"{stereo_seconds / seconds:.0f}x real time (stereo)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--method", default="model", choices=("model", "aspade"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--minutes", type=float, nargs="+", help="lengths (default: the source once; tones: 1)")
    parser.add_argument("--source", default=None)
    parser.add_argument("--input-sdr", type=float, default=5.0)
    parser.add_argument("--chunk-seconds", type=float, default=0, help="network window (0: the device's default)")
    parser.add_argument("--batch-size", type=int, default=0, help="windows per call (0: the device's default)")
    parser.add_argument("--format", default="flac", choices=("flac", "wav", "mp3"), help="the clipped input's format")
    parser.add_argument(
        "--decode-threads", type=int, default=0, help="threads reading FLAC/WAV/AIFF input (0: the default)"
    )
    parser.add_argument("--workers", type=int, default=0, help="blocks restored side by side (0: the default)")
    parser.add_argument("--repeat", type=int, default=1, help="restores of each input in one process (a row each)")
    parser.add_argument("--network", action="store_true", help="time the network alone (no files)")
    parser.add_argument("--override", action="append", default=[], help="NAME=VALUE: as declip restore --override")
    parser.add_argument("--choose", action="append", default=[], help="NAME=VALUE: as declip restore --choose")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.network:
        network_only(args)
        return
    if args.one is not None:
        print(json.dumps(one_run(args)))
        return
    print("| audio (min) | run | precision | wall (s) | real-time factor | peak memory (MB) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        lengths = args.minutes or [None if args.source else 1.0]
        for number, minutes in enumerate(lengths):
            path = Path(tmp) / f"clipped-{number}.{args.format}"
            seconds = make_input(path, minutes, args.source, args.input_sdr)
            os.sync()  # the input's write-back to disk would otherwise compete with the restore
            command = [sys.executable, __file__, "--model", args.model, "--one", str(path)]
            command += ["--method", args.method, "--device", args.device, "--precision", args.precision]
            command += ["--chunk-seconds", str(args.chunk_seconds), "--batch-size", str(args.batch_size)]
            command += ["--decode-threads", str(args.decode_threads), "--workers", str(args.workers)]
            command += ["--repeat", str(args.repeat)]
            command += [f"--override={pair}" for pair in args.override] + [f"--choose={pair}" for pair in args.choose]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.splitlines()[-1])
            for run, wall in enumerate(r["seconds"], 1):
                rtf, peak = seconds / wall, r["peak_mb"]
                print(
                    f"| {seconds / 60:.1f} | {run} | {r['precision']} | {wall:.2f} | {rtf:.1f}x | {peak:.0f} |",
                    flush=True,
                )
            for choice in dict.fromkeys(r["choices"]):
                print(f"({choice})")


if __name__ == "__main__":
    main()
