"""Clip-level detection after lossy coding: false positives on clean coded music, θ error on clipped coded music.

    nice python benchmarks/coded_detection.py --root data/music --split test

1. Every ``SPLIT/*/mixture.flac`` (whole tracks, or ``--seconds`` from the middle of each; stereo),
   coded at MP3 128 kbps and Opus 96 kbps with
   libsndfile's encoders, analysed as ``declip analyze`` does: a file is flagged when any channel's
   kind is not ``none`` (hard, hard-coded or soft). Prints the flagged share per codec.
2. ``--excerpts`` seconds from the middle of each track, peak-normalised to 0.9, clipped at 1-20 dB
   input SDR and coded (MP3 128k, Opus 96k, and uncoded): the share detected as hard-clipped and the
   median and worst relative error of the level of channel 0's positive polarity against θ times the
   encoder's gain (LAME scales by 0.95; measured with a sine, printed).
"""

from __future__ import annotations

import argparse
import glob
import time

import numpy as np
import soundfile as sf
import torch

from declip.data.codecs import code
from declip.inference.analysis import measure_array
from declip.metrics import DEFAULT_LEVELS
from declip.physics import threshold_for_sdr

LEVELS = [int(v) for v in DEFAULT_LEVELS]  # input SDRs (dB), as the tables print them
CODECS = {"mp3": 128, "opus": 96}


def codec_gain(codec: str, rate: int = 44100) -> float:
    t = np.arange(rate * 2) / rate
    sine = np.repeat((0.5 * np.sin(2 * np.pi * 997 * t))[:, None], 2, 1).astype(np.float32)
    return float(np.abs(code(sine, rate, codec, CODECS[codec])[rate // 2 : -rate // 2]).max() / 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/music")
    parser.add_argument("--split", default="test")
    parser.add_argument("--excerpts", type=float, default=20.0, help="seconds per track for the θ error (0: skip)")
    parser.add_argument("--sensitivity", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=0.0, help="clean part: this much from each middle (0: whole)")
    args = parser.parse_args()
    files = sorted(glob.glob(f"{args.root}/{args.split}/*/mixture.flac"))
    if not files:
        raise SystemExit(f"no {args.root}/{args.split}/*/mixture.flac; build it with: declip data build music")
    print(f"{len(files)} tracks of {args.root}/{args.split}, sensitivity {args.sensitivity}")
    start = time.time()
    for codec, kbps in CODECS.items():
        flagged = []
        for file in files:
            info = sf.info(file)
            frames = int(args.seconds * info.samplerate) or info.frames
            middle = max(info.frames // 2 - frames // 2, 0)
            x, rate = sf.read(file, dtype="float32", always_2d=True, start=middle, frames=frames)
            y = torch.from_numpy(code(x, rate, codec, kbps).T.copy())
            m = measure_array(y, args.sensitivity)
            print(f"  {codec} {file.split('/')[-2]}: {m.kind} ({m.confidence:.2f})", flush=True)
            if m.kind != "none":
                flagged.append(f"{file.split('/')[-2]} ({m.kind}, {m.confidence:.2f})")
        print(f"clean {codec} {kbps}k: {len(flagged)}/{len(files)} flagged {'; '.join(flagged)}", flush=True)
    print(f"({time.time() - start:.0f} s)")
    if args.excerpts <= 0:
        return
    gains = {"none": 1.0} | {codec: codec_gain(codec) for codec in CODECS}
    print("encoder gains (sine):", {k: round(v, 4) for k, v in gains.items()})
    print("\n| codec | input SDR | detected hard | median θ error | worst θ error |\n|---|---|---|---|---|")
    for codec in gains:
        for level in LEVELS:
            found, errors = 0, []
            for file in files:
                rate = sf.info(file).samplerate
                middle = max(sf.info(file).frames // 2 - int(args.excerpts * rate / 2), 0)
                x, _ = sf.read(file, dtype="float32", always_2d=True, start=middle, frames=int(args.excerpts * rate))
                x = 0.9 * x / np.abs(x).max()
                theta = float(threshold_for_sdr(torch.from_numpy(x.T[None].copy()), level))
                clipped = np.clip(x, -theta, theta)
                y = clipped if codec == "none" else code(clipped, rate, codec, CODECS[codec])
                m = measure_array(torch.from_numpy(y.T.copy()), args.sensitivity)
                if m.kind in ("hard", "hard-coded"):
                    found += 1
                    estimate = m.coded.high[0].level if m.coded is not None else float(m.physics.high[0, 0])
                    errors.append(abs(estimate / (theta * gains[codec]) - 1))
            median = f"{100 * np.median(errors):.2f} %" if errors else "-"
            worst = f"{100 * np.max(errors):.2f} %" if errors else "-"
            print(f"| {codec} | {level} dB | {found}/{len(files)} | {median} | {worst} |", flush=True)


if __name__ == "__main__":
    main()
