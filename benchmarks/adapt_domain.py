"""Self-supervised adaptation to a new domain: adapt on clipped recordings of it, score on others.

    python benchmarks/adapt_domain.py --clean data/speech [--eval 4] [--model unet-music-mcei] \
        [--steps 300] [--lr 1e-4] [--adapt-sdr 1,20] [--levels 1,3,5,7,10,15,20] \
        [--seconds 30] [--offset 0] [--config configs/adapt.yaml] [--oracle] [--json OUT]

The files of ``--clean`` (sorted by name) are split: the last ``--eval`` are held out for scoring,
the others are clipped, each at an input SDR drawn (seeded) from ``--adapt-sdr``, and written as
float WAVs. The model adapts on those clipped files alone, as ``declip adapt`` does (clip levels
detected per file, MC + EI, best moving-average state); their clean versions are never read
again. Then the base and the adapted model restore each held-out file clipped at every level
(``threshold_for_sdr``, the clip level given), scored by plain SDR at the file's own rate (mono:
the first channel). ``--seconds`` crops every file to that long a stretch from ``--offset``.

``--oracle`` replaces the adaptation by supervised fine-tuning on the clean versions of the same
files (same steps, learning rate and batch size; segments clipped at input SDRs drawn from
``--adapt-sdr``). It is not adaptation, since it reads clean audio: it is the ceiling that any
adaptation on these files could reach, and a check that the protocol can show a gain at all.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from declip.data.audio_files import find_audio
from declip.data.recordings import scan_recordings
from declip.inference.loaded import LoadedModel
from declip.inference.restore import restore_array
from declip.losses import SupervisedLoss
from declip.metrics import delta_sdr
from declip.physics import Clipping, threshold_for_sdr
from declip.training.adapt import AdaptSettings, adapt
from declip.zoo import load_model
from declip.zoo.registry import DEFAULT_MODEL


def read(path: Path, seconds: float | None, offset: float) -> tuple[torch.Tensor, int]:
    """The first channel of ``path`` as float64 ``(1, time)``, cropped (a short file: its end)."""
    info = sf.info(path)
    rate = info.samplerate
    frames = info.frames if seconds is None else min(int(seconds * rate), info.frames)
    start = min(int(offset * rate), info.frames - frames)
    data, rate = sf.read(path, start=start, frames=frames, dtype="float64", always_2d=True)
    return torch.from_numpy(data[:, :1].T.copy()), rate


def oracle(
    base: LoadedModel, clean: list[tuple[torch.Tensor, int]], settings: AdaptSettings, sdrs: tuple
) -> LoadedModel:
    """Supervised fine-tuning of a copy of ``base`` on clipped segments of the ``(signal, rate)`` pairs
    ``clean``, with the steps, learning rate, batch size and segment length of ``settings``."""
    import copy

    import torch.nn.functional as F
    import torchaudio.functional as AF

    model = copy.deepcopy(base.model).train()
    signals = [AF.resample(x.float(), rate, base.sample_rate) for x, rate in clean]
    length = max(round(settings.segment_seconds * base.sample_rate) // base.hop, 1) * base.hop
    signals = [F.pad(x, (0, max(length - x.shape[-1], 0))) for x in signals]  # short files: padded
    if not any(bool(x.abs().max() > 0) for x in signals):
        raise SystemExit("adapt_domain: every clean file is silent; nothing to fine-tune on")
    optimizer, loss = torch.optim.Adam(model.parameters(), lr=settings.lr), SupervisedLoss()
    g = torch.Generator().manual_seed(settings.seed)
    for _ in range(settings.steps):
        batch = []
        while len(batch) < settings.batch_size:
            x = signals[int(torch.randint(len(signals), (1,), generator=g))]
            start = int(torch.randint(x.shape[-1] - length + 1, (1,), generator=g))
            segment = x[:, start : start + length]
            if segment.abs().max() > 0:  # silence cannot be clipped at an input SDR: draw again
                batch.append(segment)
        x = torch.stack(batch)
        target = sdrs[0] + (sdrs[1] - sdrs[0]) * torch.rand(len(x), generator=g)
        physics = Clipping(threshold_for_sdr(x, target)[:, None, None])
        y = physics(x)
        value = loss(model(y, physics), y, physics, model, x)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    tuned = LoadedModel.from_module_model(model.eval(), base.sample_rate, base.channels, dict(base.info))
    tuned.precision = base.precision  # scored as the base and adapted models are
    return tuned


def label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", required=True, type=Path)
    parser.add_argument("--eval", type=int, default=4)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=AdaptSettings.lr)
    parser.add_argument("--adapt-sdr", default="1,20")
    parser.add_argument("--levels", default="1,3,5,7,10,15,20")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--offset", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, default=None, help="adaptation settings (declip adapt --config)")
    parser.add_argument("--oracle", action="store_true", help="supervised fine-tuning on the clean files instead")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    files = sorted(Path(source.path) for source in find_audio([args.clean]) if source.member is None)
    if len(files) <= args.eval:
        raise SystemExit(f"adapt_domain: {args.clean} holds {len(files)} files; need more than --eval {args.eval}")
    adapt_files, eval_files = files[: -args.eval], files[-args.eval :]
    low, high = (float(v) for v in args.adapt_sdr.split(","))
    levels = [float(v) for v in args.levels.split(",")]
    rng = np.random.default_rng(args.seed)
    base = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        seconds_of_audio = 0.0
        for number, file in enumerate(adapt_files):
            x, rate = read(file, args.seconds, args.offset)
            theta = float(threshold_for_sdr(x[None], float(rng.uniform(low, high)))[0])
            clipped = Path(tmp) / f"{number:03d}-{file.stem}.wav"  # files of one name in several folders
            sf.write(clipped, x.clamp(-theta, theta).T.numpy(), rate, subtype="FLOAT")
            seconds_of_audio += x.shape[-1] / rate
        recordings, failures = scan_recordings([tmp])
        assert not failures, failures
        start = time.perf_counter()
        settings = (
            AdaptSettings.from_yaml(args.config, steps=args.steps, lr=args.lr)
            if args.config
            else AdaptSettings(steps=args.steps, lr=args.lr)
        )
        if args.oracle:
            clean = [read(file, args.seconds, args.offset) for file in adapt_files]
            adapted = oracle(base, clean, settings, (low, high))
        else:
            adapted, report = adapt(base, recordings, settings, progress=False)
        adapt_seconds = time.perf_counter() - start
    how = "oracle: supervised fine-tuning on the clean versions of" if args.oracle else "adapted on"
    print(f"{how} {len(recordings)} clipped files ({seconds_of_audio:.0f} s, input SDR {low:g}-{high:g} dB): "
          f"{args.steps} steps, lr {args.lr}, {adapt_seconds:.0f} s")  # fmt: skip
    rows: dict[float, dict[str, list[float]]] = {level: {"base": [], "adapted": []} for level in levels}
    for file in eval_files:
        x, rate = read(file, args.seconds, args.offset)
        for level in levels:
            theta = float(threshold_for_sdr(x[None], level)[0])
            y = x.clamp(-theta, theta).float()
            for name, model in (("base", base), ("adapted", adapted)):
                x_hat, _ = restore_array(y, rate, model, threshold=theta)
                rows[level][name].append(float(delta_sdr(x, x_hat, y)))
    print(f"\nmodel {args.model}; held out: {', '.join(label(f) for f in eval_files)}")
    print("| input SDR (dB) | base ΔSDR | adapted ΔSDR | change | files better / worse |")
    print("|---|---|---|---|---|")
    for level in levels:
        b, a = np.array(rows[level]["base"]), np.array(rows[level]["adapted"])
        print(f"| {level:g} | {b.mean():.2f} | {a.mean():.2f} | {a.mean() - b.mean():+.2f} | "
              f"{int((a > b).sum())} / {int((a < b).sum())} |")  # fmt: skip
    means = [np.mean(rows[level][name]) for name in ("base", "adapted") for level in levels]
    print(f"| mean | {np.mean(means[: len(levels)]):.2f} | {np.mean(means[len(levels) :]):.2f} | | |")
    if args.json:
        out = {"adapt_files": [label(f) for f in adapt_files], "eval_files": [label(f) for f in eval_files],
               "oracle": args.oracle, "steps": args.steps, "lr": args.lr, "adapt_seconds": adapt_seconds,
               "rows": {str(k): v for k, v in rows.items()}}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
