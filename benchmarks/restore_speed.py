"""Speed and peak memory of ``declip restore`` on stereo 44.1 kHz audio of several lengths.

    python benchmarks/restore_speed.py --model CKPT --minutes 1 10 60 [--source FILE]

Each length runs in a fresh process (so peak memory is its own): the audio is a real recording
(``--source``, looped to length) or tones, clipped at 5 dB input SDR, written to a temporary
FLAC, restored to a WAV with :func:`declip.restore`. Prints real-time factor and peak RSS.
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


def one_run(model: str, minutes: float, source: str | None, chunk_seconds: float) -> dict:
    import torch

    import declip
    from declip.inference import LoadedModel
    from declip.physics import threshold_for_sdr

    rate = 44100
    frames = int(minutes * 60 * rate)
    if source:
        base, base_rate = sf.read(source, dtype="float32", always_2d=True)
        assert base_rate == rate, "use a 44.1 kHz source"
    else:
        t = np.arange(rate * 10) / rate
        base = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1).astype(np.float32) * 0.5
    reps = -(-frames // len(base))
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.flac", Path(tmp) / "out.wav"
        theta = float(threshold_for_sdr(torch.from_numpy(base[: rate * 30].T.copy())[None], 5.0)[0])
        with sf.SoundFile(src, "w", rate, 2, subtype="PCM_24") as f:
            for _ in range(reps):
                f.write(np.clip(base[:, :2] if base.shape[1] >= 2 else np.repeat(base, 2, 1), -theta, theta))
        loaded = LoadedModel.from_checkpoint(model)
        start = time.perf_counter()
        declip.restore(src, loaded, output=out, chunk_seconds=chunk_seconds)
        seconds = time.perf_counter() - start
    audio_seconds = reps * len(base) / rate
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"minutes": audio_seconds / 60, "seconds": seconds, "rtf": audio_seconds / seconds, "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0])
    parser.add_argument("--source", default=None)
    parser.add_argument("--chunk-seconds", type=float, default=10.0)
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_run(args.model, args.one, args.source, args.chunk_seconds)))
        return
    print("| audio (min) | wall (s) | real-time factor | peak memory (MB) |")
    print("|---|---|---|---|")
    for minutes in args.minutes:
        command = [sys.executable, __file__, "--model", args.model, "--one", str(minutes)]
        command += ["--chunk-seconds", str(args.chunk_seconds)] + (["--source", args.source] if args.source else [])
        r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(f"| {r['minutes']:.1f} | {r['seconds']:.1f} | {r['rtf']:.1f}x | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
