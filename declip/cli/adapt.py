"""``declip adapt INPUT... --model REF -o OUTMODEL``: fine-tune a declipper on clipped recordings alone."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from declip.zoo.registry import DEFAULT_MODEL


def base_config(model) -> dict:
    """The ``config.json`` of the model being adapted (read from its checkpoint when it has none)."""
    if "backbone" in model.info:
        return dict(model.info)
    from declip.zoo.export import model_config, read_checkpoint

    return model_config(read_checkpoint(Path(model.info["checkpoint"])))


def run_adapt(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="declip adapt",
        description="Adapt a declipper to clipped recordings, with no clean audio (re-clipping loss by default).",
    )
    parser.add_argument("inputs", nargs="+", help="clipped audio files or folders (searched recursively)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"the model to start from (default: {DEFAULT_MODEL})")
    parser.add_argument("-o", "--out", required=True, help="folder for the adapted model (Hub layout)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="training steps (default 300)")
    budget.add_argument("--minutes", type=float, help="wall-clock budget instead of steps")
    parser.add_argument("--config", help="YAML of adaptation settings (configs/adapt.yaml)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    args = parser.parse_args(argv)

    from declip.errors import ConfigError
    from declip.inference.device import resolve_device

    try:
        device = resolve_device(args.device)
    except ConfigError as error:
        parser.error(str(error))
    from declip.data.recordings import require_clipping, scan_recordings
    from declip.training.adapt import AdaptSettings, BestState, adapt
    from declip.zoo import load_model
    from declip.zoo.export import check_target, export_adapted

    out = Path(args.out)
    check_target(out, args.overwrite)
    budget_given = {"steps": args.steps, "minutes": args.minutes}
    if args.config:
        settings = AdaptSettings.from_yaml(args.config)
    else:
        settings = AdaptSettings()
    if args.steps is not None or args.minutes is not None:
        settings.steps, settings.minutes = budget_given["steps"], budget_given["minutes"]
    settings.check()
    model = load_model(args.model, device=device, precision="fp32")
    config = base_config(model)
    recordings, failures = scan_recordings(args.inputs)
    for name, reason in failures:
        print(f"declip: warning: skipping {name}: {reason}", file=sys.stderr)
    require_clipping(recordings, failures)
    adapted, report = adapt(model, recordings, settings, progress=sys.stderr.isatty())
    if not report.adapted:  # stopped before warm-up ended: the weights are the base model's, nothing learnt
        why = "stopped by Ctrl-C" if report.interrupted else "ended"
        print(
            f"declip: {why} after {report.steps} step(s), before any adapted state was kept (the first "
            f"{BestState().warmup} steps are warm-up): nothing written to {out}; the base model is {args.model}",
            file=sys.stderr,
        )
        return 1
    command = "declip adapt " + " ".join(shlex.quote(a) for a in argv)
    export_adapted(
        adapted.model, config, report.as_dict(), {"losses": settings.losses, "lr": settings.lr}, args.model, out,
        command, overwrite=args.overwrite,
    )  # fmt: skip
    how = "stopped by Ctrl-C after" if report.interrupted else "adapted for"
    print(
        f"{how} {report.steps} steps ({report.seconds:.0f} s) on {len(recordings)} file(s), "
        f"{report.clipped_files} clipped; training loss {report.first_loss:.4g} -> {report.best_loss:.4g} "
        f"(best moving average); wrote {out}"
    )
    print(f"restore with: declip restore INPUT -o OUT --model {out}")
    print(
        "note: on the benchmarks adaptation with the default settings improved held-out speech and music on average, "
        "not every file; on SQAM excerpts it helped lightly clipped ones and hurt heavily clipped ones "
        "(docs/results.md); compare with the base model before relying on it",
        file=sys.stderr,
    )
    return 0
