"""``declip analyze FILE... [--json] [--plot OUT.png]``: how, and how hard, each recording is clipped."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from declip.cli.restore import _inputs
from declip.detection.measurement import Measurement
from declip.errors import ConfigError
from declip.inference.analysis import FileAnalysis, analyze_file, restore_excerpt
from declip.zoo.registry import DEFAULT_MODEL


def _plot(analysis: FileAnalysis, audio, measurement: Measurement, model_ref: str, out: Path) -> None:
    """Amplitude histogram with the detected levels, and spectrograms of the worst second before and after, both
    under the measurement the analysis reports (so at its ``--sensitivity``)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from declip.plots import spectrogram_db
    from declip.zoo import load_model

    channel = max(analysis.channels, key=lambda c: c.clipped_share).channel
    clipped, restored = restore_excerpt(
        audio, analysis.sample_rate, load_model(model_ref, precision="fp32"), measurement, analysis.worst_second
    )
    fig = Figure(figsize=(9, 7), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1)
    values = measurement.level_view(audio)[channel].numpy()  # where a slow baseline was taken out: without it
    peak = max(float(np.abs(values).max()), 1e-9)
    axes[0].hist(values, bins=np.linspace(-peak * 1.02, peak * 1.02, 801), log=True, color="0.3")
    info = analysis.channels[channel]
    for level in (info.high, info.low):
        if abs(level) <= peak:
            axes[0].axvline(level, color="tab:red", linewidth=1)
    axes[0].set_title(f"{Path(analysis.path).name}, channel {channel}: {info.kind}, confidence {info.confidence:.2f}")
    axes[0].set_xlabel("amplitude")
    for ax, signal, name in ((axes[1], clipped, "input"), (axes[2], restored, "restored")):
        spec = spectrogram_db(signal[channel]).numpy()
        seconds = signal.shape[1] / analysis.sample_rate
        extent = (analysis.worst_second, analysis.worst_second + seconds, 0, analysis.sample_rate / 2000)
        ax.imshow(spec, origin="lower", aspect="auto", extent=extent, vmin=spec.max() - 80, vmax=spec.max())
        ax.set_title(f"{name}, worst second")
        ax.set_ylabel("kHz")
    axes[2].set_xlabel("time (s)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)


def run_analyze(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="declip analyze", description="Report how each recording is clipped.")
    parser.add_argument("inputs", nargs="+", help="audio files or folders (searched recursively)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of text")
    parser.add_argument("--plot", type=Path, help="PNG: amplitude histogram and the worst second before/after")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the model that restores the plotted second")
    parser.add_argument("--sensitivity", type=float, default=1.0, help="above 1 flags weaker evidence")
    args = parser.parse_args(argv)
    if args.sensitivity <= 0:
        parser.error("--sensitivity must be positive")
    files, failures = _inputs(args.inputs)
    if args.plot is not None and len(files) > 1:
        parser.error("--plot draws one file; give one input with it")
    results = []
    for file, _ in files:
        try:
            analysis, audio, measurement = analyze_file(file, args.sensitivity)
            results.append(analysis.as_dict())
            if not args.json:
                print("\n".join(analysis.lines()))
            if args.plot is not None:
                _plot(analysis, audio, measurement, args.model, args.plot)
        except ConfigError as error:
            failures.append((str(file), str(error)))
    if args.json:
        print(json.dumps({"files": results, "failed": [{"path": p, "error": e} for p, e in failures]}, indent=2))
    for name, reason in failures:
        print(f"declip: error: {name}: {reason}", file=sys.stderr)
    return 1 if failures else 0
