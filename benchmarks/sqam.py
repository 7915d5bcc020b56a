"""The declipping survey's protocol on the SQAM excerpts, for trained declip models.

    python benchmarks/sqam.py --data ../shared/benchmarks/sqam --model A.ckpt [--model B.ckpt] \\
        [--levels 1,3,5,7,10,15,20] [--files 10]

Protocol (Záviška et al. 2021): x = int16 / 32768, mono, 44.1 kHz, not normalised; for each input
SDR the threshold θ is root-searched so that SDR(x, clip(x, θ)) hits it; the model restores
clip(x, θ) given θ; score ΔSDR = SDR(x, x̂) - SDR(x, y) with the plain SDR, overall and on the
clipped samples, averaged over the files. Prints a markdown table per model and the wall time.
The excerpts are for evaluation only: never train or tune on them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from declip.inference import LoadedModel, restore_array
from declip.physics import sdr, threshold_for_sdr

PUBLISHED = {  # mean ΔSDR of the study's released results, ../shared/benchmarks/sqam/README.md
    "SS-PEW": [12.17, 15.03, 16.60, 17.66, 19.00, 21.11, 21.99],
    "A-SPADE": [11.88, 13.88, 15.06, 15.98, 17.28, 19.43, 20.27],
}


def score(model: LoadedModel, files: list[Path], levels: list[float]) -> tuple[dict, float, float]:
    totals = {level: [] for level in levels}
    clipped_totals = {level: [] for level in levels}
    audio_seconds, start = 0.0, time.perf_counter()
    for file in files:
        pcm, rate = sf.read(file, dtype="int16")
        x = torch.from_numpy(pcm.astype(np.float64) / 32768).float()[None]  # (1, frames)
        for level in levels:
            theta = float(threshold_for_sdr(x[None], level)[0])
            y = x.clamp(-theta, theta)
            x_hat, _ = restore_array(y, rate, model, threshold=theta)
            mask = y.abs() >= theta * (1 - 1e-5)
            totals[level].append(float(sdr(x, x_hat) - sdr(x, y)))
            clipped_totals[level].append(float(sdr(x, x_hat, mask) - sdr(x, y, mask)))
            audio_seconds += x.shape[1] / rate
    wall = time.perf_counter() - start
    means = {level: (np.mean(totals[level]), np.mean(clipped_totals[level])) for level in levels}
    return means, wall, audio_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/benchmarks/sqam"))
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--levels", default="1,3,5,7,10,15,20")
    parser.add_argument("--files", type=int, default=10)
    args = parser.parse_args()
    levels = [float(v) for v in args.levels.split(",")]
    files = sorted(args.data.glob("*.wav"))[: args.files]
    print(f"{len(files)} SQAM excerpts from {args.data}; mean ΔSDR (dB), overall / clipped samples only\n")
    print("| method | " + " | ".join(f"{v:g} dB" for v in levels) + " | real-time factor |")
    print("|---" * (len(levels) + 2) + "|")
    for name, row in PUBLISHED.items():
        cells = [
            f"{row[[1, 3, 5, 7, 10, 15, 20].index(int(v))]:.2f}" for v in levels if int(v) in (1, 3, 5, 7, 10, 15, 20)
        ]
        print(f"| {name} (published) | " + " | ".join(cells) + " | |")
    for ref in args.model:
        means, wall, seconds = score(LoadedModel.from_checkpoint(ref), files, levels)
        cells = [f"{means[v][0]:.2f} / {means[v][1]:.2f}" for v in levels]
        print(f"| {ref} | " + " | ".join(cells) + f" | {seconds / wall:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
