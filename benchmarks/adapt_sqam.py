"""Self-supervised adaptation on SQAM: each clipped excerpt adapts the model on itself, no clean audio.

    python benchmarks/adapt_sqam.py --data ../shared/benchmarks/sqam [--model unet-music-mcei] \
        [--steps 100] [--lr 1e-4] [--levels 1,5,15] [--files 10] [--config configs/adapt.yaml] [--json OUT]

The survey protocol of ``declip bench sqam`` (int16/32768 input, mono, root-searched θ, plain SDR).
For every excerpt and level the clipped excerpt is written to a float WAV and the model is adapted
on that file alone as ``declip restore --adapt`` does (clip level detected from the file, anchored
re-clipping, or the losses of ``--config``; the clean excerpt never read); then both the base and the adapted model
restore it at the protocol's θ. Prints mean ΔSDR per level with and without adaptation, and the
adaptation time per excerpt.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from declip.bench.sqam import LEVELS, PUBLISHED, excerpts, read_excerpt
from declip.data.recordings import scan_recordings
from declip.inference.restore import restore_array
from declip.metrics import delta_sdr
from declip.physics import threshold_for_sdr
from declip.training.adapt import AdaptSettings, adapt
from declip.zoo import load_model
from declip.zoo.registry import DEFAULT_MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=AdaptSettings.lr)
    parser.add_argument("--levels", default="1,5,15")
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--config", type=Path, default=None, help="adaptation settings (declip adapt --config)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    levels = [float(v) for v in args.levels.split(",")]
    base = load_model(args.model)
    rows: dict[float, dict[str, list[float]]] = {level: {"base": [], "adapted": [], "seconds": []} for level in levels}
    with tempfile.TemporaryDirectory() as tmp:
        for file in excerpts(args.data, args.files):
            x, rate = read_excerpt(file)
            for level in levels:
                theta = float(threshold_for_sdr(x[None], level)[0])
                y = x.clamp(-theta, theta).float()
                clipped = Path(tmp) / f"{file.stem}-{level:g}.wav"
                sf.write(clipped, y.T.numpy(), rate, subtype="FLOAT")
                recordings, _ = scan_recordings([clipped])
                start = time.perf_counter()
                settings = (
                    AdaptSettings.from_yaml(args.config, steps=args.steps, lr=args.lr)
                    if args.config
                    else replace(AdaptSettings.per_file(args.steps), lr=args.lr)  # as declip restore --adapt
                )
                adapted, _ = adapt(base, recordings, settings, progress=False)
                seconds = time.perf_counter() - start
                for name, model in (("base", base), ("adapted", adapted)):
                    x_hat, _ = restore_array(y, rate, model, threshold=theta)
                    rows[level][name].append(float(delta_sdr(x, x_hat, y)))
                rows[level]["seconds"].append(seconds)
                print(f"{file.stem} {level:g} dB: base {rows[level]['base'][-1]:.2f}, "
                      f"adapted {rows[level]['adapted'][-1]:.2f} ({seconds:.1f} s)", flush=True)  # fmt: skip
    aspade = dict(zip(LEVELS, PUBLISHED["A-SPADE"]))
    losses = f", losses of {args.config}" if args.config else ", anchored re-clipping (declip restore --adapt)"
    print(f"\nmodel {args.model}, {args.steps} adaptation steps (lr {args.lr}{losses}) per excerpt and level")
    print("| input SDR (dB) | base ΔSDR | adapted ΔSDR | A-SPADE (published) | adaptation s/excerpt |")
    print("|---|---|---|---|---|")
    for level in levels:
        r = rows[level]
        published = aspade.get(level, float("nan"))
        print(f"| {level:g} | {np.mean(r['base']):.2f} | {np.mean(r['adapted']):.2f} | {published:.2f} | "
              f"{np.mean(r['seconds']):.1f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
