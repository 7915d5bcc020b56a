"""Learned and classical declippers on the same fixed segments of a corpus's held-out split.

    python benchmarks/heldout_eval.py --root data/music --per-level 2 --seconds 3 \\
        --model unet-music-reclip --untrained configs/music-unfolded.yaml --method spline --method aspade

Segments come from ``AudioDataModule``'s fixed test set (the seed fixes them: the same for every
method and run), each clipped at one input SDR of ``--levels``. Each method restores the clipped
segment given its threshold (:func:`declip.inference.restore.restore_array`); prints a markdown table
of mean ΔSDR per input SDR, the mean, and the real-time factor (mono audio seconds per wall second).
``--model`` takes anything ``declip restore --model`` takes; ``--untrained CONFIG`` builds the
config's backbone with its initial weights; ``--method`` is ``spline`` or ``aspade``. ``--override NAME=VALUE``
(repeatable; VALUE read as YAML) rebuilds each ``--model``'s backbone with that constructor setting changed and
the same weights, to score settings that need no training (``--override heavy_rho=0.05``); a setting that only sets
initial weights (which the trained ones replace) is refused. ``--choose NAME=VALUE`` (repeatable) adds, for each
``--model``, a row where re-clipping each segment picks that setting or the model's own for it, as ``declip restore
--choose`` does per file (:mod:`declip.inference.choice`; the segment is the recording, its time counted).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import yaml

from declip.config import instantiate
from declip.data import AudioDataModule, MusdbCorpus
from declip.errors import ConfigError
from declip.inference import LoadedModel
from declip.inference.methods import ASPADEMethod, SplineMethod
from declip.inference.overrides import alternatives, overridden, parse_overrides
from declip.inference.restore import restore_array
from declip.metrics import delta_sdr
from declip.models import Declipper
from declip.zoo import load_model


def segments(root: str, split: str, per_level: int, seconds: float, levels: list[float]) -> dict:
    data = AudioDataModule(
        MusdbCorpus(root=root, source="mixture"), segment_seconds=seconds, levels=levels,
        test_items=per_level * len(levels), val_items=per_level * len(levels), batch_size=per_level * len(levels),
    )  # fmt: skip
    data.setup()
    loader = data.test_dataloader() if split == "test" else data.val_dataloader()
    return next(iter(loader))


@contextlib.contextmanager
def override_errors() -> Iterator[None]:
    """A bad --override stops the script with its one line (the ConfigError's message, after the option)."""
    try:
        yield
    except ConfigError as error:
        raise SystemExit(f"--override {error}") from None


def override(loaded: LoadedModel, overrides: dict) -> LoadedModel:
    with override_errors():
        return overridden(loaded, overrides)


def methods(args: argparse.Namespace) -> list[tuple[str, object]]:
    with override_errors():
        overrides = parse_overrides(args.override)
    if overrides and not args.model:
        raise SystemExit("--override changes a --model's settings, and no --model was given: add --model REF")
    label = "".join(f", {k}={v}" for k, v in overrides.items())
    try:
        choices = [parse_overrides([pair]) for pair in args.choose]
    except ConfigError as error:
        raise SystemExit(f"--choose {error}") from None
    out: list[tuple[str, object]] = []
    for ref in args.model:
        loaded = load_model(ref, precision="fp32")
        out.append((f"{ref}{label}", override(loaded, overrides) if overrides else loaded))
        if choices:
            try:
                others = alternatives(lambda ref=ref: load_model(ref, precision="fp32"), overrides, choices)
            except ConfigError as error:
                raise SystemExit(f"--choose {error}") from None
            out.append((f"{ref}{label}, or {' or '.join(others)} as re-clipping chooses", (out[-1][1], others)))
    for config in args.untrained:
        backbone = instantiate(yaml.safe_load(Path(config).read_text())["model"]["backbone"])
        out.append((f"untrained {Path(config).stem}", LoadedModel.from_module_model(Declipper(backbone), 44100, 1)))
    named = {"spline": SplineMethod, "aspade": ASPADEMethod}
    out += [(name, named[name]()) for name in args.method]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/music")
    parser.add_argument("--split", default="test", choices=("test", "valid"))
    parser.add_argument("--per-level", type=int, default=2, help="segments per input SDR")
    parser.add_argument("--seconds", type=float, default=3.0, help="segment length")
    parser.add_argument("--levels", default="1,3,5,7,10,15,20")
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--untrained", action="append", default=[], help="a training config: its untrained model")
    parser.add_argument("--method", action="append", default=[], choices=("spline", "aspade"))
    parser.add_argument("--override", action="append", default=[], help="NAME=VALUE: a --model backbone setting")
    parser.add_argument(
        "--choose", action="append", default=[], help="NAME=VALUE: a setting re-clipping may pick per segment"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    levels = [float(v) for v in args.levels.split(",")]
    batch = segments(args.root, args.split, args.per_level, args.seconds, levels)
    rate = 44100
    results = {}
    for name, method in methods(args):
        gains: dict[float, list[float]] = {}
        wall, picks = 0.0, {}
        for y, x, high, level in zip(batch["y"], batch["x"], batch["high"], batch["input_sdr"]):
            start = time.perf_counter()
            model, alternatives = method if isinstance(method, tuple) else (method, None)
            with torch.inference_mode():
                x_hat, report = restore_array(y, rate, model, float(high.flatten()[0]), alternatives=alternatives)
            wall += time.perf_counter() - start
            # the segment's measured input SDR is its level only to float precision (20.0000019): group by the nearest
            nearest = min(levels, key=lambda v: abs(v - float(level)))
            if not abs(nearest - float(level)) < 0.01:
                raise SystemExit(f"a segment measured {float(level):g} dB input SDR, none of --levels {args.levels}")
            gains.setdefault(nearest, []).append(float(delta_sdr(x[None], x_hat[None], y[None])))
            if report.choice is not None:
                picks.setdefault(nearest, []).append(report.choice.name)
        row = {f"{k:g}": float(np.mean(v)) for k, v in sorted(gains.items())}
        row["mean"] = float(np.mean(list(row.values())))
        row["real_time"] = batch["y"].shape[0] * args.seconds / wall
        row["segments"] = {f"{k:g}": len(v) for k, v in sorted(gains.items())}
        row["per_segment"] = {f"{k:g}": v for k, v in sorted(gains.items())}
        chosen = Counter(name for names in picks.values() for name in names)
        picked = {"chosen": dict(chosen), "picks": {f"{k:g}": v for k, v in sorted(picks.items())}} if chosen else {}
        results[name] = row | picked
        counts = "".join(f", {n} chosen for {c}" for n, c in chosen.items())
        print(f"{name}: mean {row['mean']:.2f} dB, {row['real_time']:.2f}x real time{counts}", flush=True)
    print(f"\nMean ΔSDR (dB), {args.per_level} segment(s) of {args.seconds:g} s per input SDR, {args.split} split")
    print("\n| method | " + " | ".join(f"{v:g} dB" for v in levels) + " | mean | × real time |")
    print("|---" * (len(levels) + 3) + "|")
    for name, row in results.items():
        cells = " | ".join(f"{row[f'{v:g}']:.2f}" for v in levels)
        print(f"| {name} | {cells} | {row['mean']:.2f} | {row['real_time']:.2f} |")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
