"""Speed and peak memory of ``declip restore`` on stereo 44.1 kHz audio of several lengths.

    python benchmarks/restore_speed.py [--model REF] [--method model|aspade] --minutes 1 10 60 \
        [--source FILE] [--input-sdr 5] [--device cpu|cuda] [--precision auto|fp32|bf16]

The audio is a real recording (``--source``, looped to length) or tones, clipped at ``--input-sdr``
dB and written to a temporary FLAC by this process; each length is then restored to a WAV with
:func:`declip.restore` in a fresh process, whose peak RSS is the restore's alone. ``--model``
takes any reference ``declip restore`` takes (default: the zoo's default model).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from declip.inference.restore import CHUNK_SECONDS
from declip.zoo.registry import DEFAULT_MODEL


def make_input(path: Path, minutes: float, source: str | None, input_sdr: float) -> float:
    """Write ``minutes`` of stereo 44.1 kHz audio clipped at ``input_sdr`` dB; returns its seconds."""
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
    reps = -(-int(minutes * 60 * rate) // len(base))
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_24") as f:
        for _ in range(reps):
            f.write(np.clip(base, -theta, theta))
    return reps * len(base) / rate


def one_run(model: str, method: str, device: str, precision: str, source: Path, chunk_seconds: float) -> dict:
    """Restore ``source`` in this (fresh) process; its peak memory is the restore's alone."""
    import declip
    from declip.cli.restore import _method

    loaded = _method(method, model, device, precision)
    start = time.perf_counter()
    declip.restore(source, loaded, output=source.with_suffix(".out.wav"), chunk_seconds=chunk_seconds)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "precision": getattr(loaded, "precision", "fp32")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--method", default="model", choices=("model", "aspade"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0])
    parser.add_argument("--source", default=None)
    parser.add_argument("--input-sdr", type=float, default=5.0)
    parser.add_argument("--chunk-seconds", type=float, default=CHUNK_SECONDS)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_run(args.model, args.method, args.device, args.precision, args.one, args.chunk_seconds)))
        return
    print("| audio (min) | precision | wall (s) | real-time factor | peak memory (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = Path(tmp) / f"clipped-{minutes:g}min.flac"
            seconds = make_input(path, minutes, args.source, args.input_sdr)
            command = [sys.executable, __file__, "--model", args.model, "--one", str(path)]
            command += ["--method", args.method, "--device", args.device, "--precision", args.precision]
            command += ["--chunk-seconds", str(args.chunk_seconds)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.splitlines()[-1])
            rtf = seconds / r["seconds"]
            row = f"| {seconds / 60:.1f} | {r['precision']} | {r['seconds']:.1f} | {rtf:.1f}x | {r['peak_mb']:.0f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
