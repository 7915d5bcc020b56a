"""Spectrograms of a clipped excerpt, its restoration and the clean original, as a PNG.

    python benchmarks/spectrogram_figure.py --source data/music/test/nexuiz-stairs/mixture.flac \
        --start 30 --seconds 4 --input-sdr 5 [--model REF] --out docs/spectrogram.png

The excerpt (first channel) is clipped at ``--input-sdr`` dB, restored with the model (default: the
zoo's default) and drawn on one colour scale; the SDRs are printed and put in the title.
"""

from __future__ import annotations

import argparse

import soundfile as sf
import torch

import declip
from declip.physics import sdr, threshold_for_sdr
from declip.plots import spectrogram_figure
from declip.zoo.registry import DEFAULT_MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True)
    parser.add_argument("--start", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--input-sdr", type=float, default=5.0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", default="docs/spectrogram.png")
    args = parser.parse_args()
    rate = sf.info(args.source).samplerate
    audio, rate = sf.read(
        args.source, start=int(args.start * rate), frames=int(args.seconds * rate), dtype="float32", always_2d=True
    )
    clean = torch.from_numpy(audio[:, 0].copy())[None]
    theta = float(threshold_for_sdr(clean[None], args.input_sdr)[0])
    clipped = clean.clamp(-theta, theta)
    restored = declip.restore(clipped, args.model, sample_rate=rate, threshold=theta)
    before, after = float(sdr(clean, clipped)[0]), float(sdr(clean, restored)[0])
    title = f"{args.model}: SDR {before:.1f} dB clipped, {after:.1f} dB restored"
    fig = spectrogram_figure({"clipped": clipped[0], "restored": restored[0], "clean": clean[0]}, rate, 2048, title)
    fig.savefig(args.out, dpi=110)
    print(f"{title}; wrote {args.out}")


if __name__ == "__main__":
    main()
