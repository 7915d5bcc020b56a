"""``declip bench sqam``: the survey's SQAM protocol for zoo models, checkpoints and A-SPADE."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def run_bench(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="declip bench", description="Benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    sqam = commands.add_parser("sqam", help="the declipping survey's protocol on the EBU SQAM excerpts")
    sqam.add_argument("--data", type=Path, required=True, help="the folder of SQAM excerpts (mono 16-bit WAV)")
    sqam.add_argument("--model", action="append", default=[], help="zoo name, ORG/NAME[@REV], folder or .ckpt")
    sqam.add_argument(
        "--method", action="append", default=[], choices=("aspade", "spline"), help="a classical baseline"
    )
    sqam.add_argument("--levels", default="1,3,5,7,10,15,20", help="input SDRs (dB), comma-separated")
    sqam.add_argument("--files", type=int, help="only the first N excerpts (sorted by name)")
    sqam.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    sqam.add_argument("--json", type=Path, help="write every score (per level, per file, timing) here")
    sqam.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args(argv)
    try:
        levels = tuple(float(v) for v in args.levels.split(","))
    except ValueError:
        parser.error(f"--levels takes numbers separated by commas; got {args.levels!r}")
    if not args.model and not args.method:
        parser.error("give at least one --model or --method")
    from declip.bench.sqam import excerpts, markdown, score
    from declip.cli.restore import _method

    files = excerpts(args.data, args.files)
    results = []
    for name, method, ref in [(m, "model", m) for m in args.model] + [(m, m, None) for m in args.method]:
        label = {"aspade": "A-SPADE (declip)", "spline": "cubic spline (declip)"}.get(method, name)
        results.append(score(label, _method(method, ref, args.device), files, levels))
        print(f"{label}: done in {results[-1].wall_seconds:.1f} s", flush=True)
    table = markdown(results, levels, len(files))
    print("\n" + table)
    if args.markdown is not None:
        args.markdown.write_text(table)
    if args.json is not None:
        payload = {"files": [f.stem for f in files], "levels": list(levels)}
        payload["methods"] = {r.name: r.as_dict() for r in results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0
