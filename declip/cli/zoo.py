"""``declip zoo list|download|export|push|blend``: the model zoo from the command line."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from declip.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="declip zoo", description="Released declippers and the Hugging Face Hub.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the zoo's models")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    download = commands.add_parser("download", help="fetch a model into the Hugging Face cache and check it")
    download.add_argument("ref", help="zoo name or ORG/NAME[@REVISION]")
    export = commands.add_parser("export", help="write a checkpoint in the Hub layout")
    export.add_argument("checkpoint", type=Path, help="a .ckpt written by declip fit")
    export.add_argument("out", type=Path, help="the folder to write")
    export.add_argument("--name", help="model name on the card (default: the folder's name)")
    export.add_argument("--metrics", type=Path, help="JSON {evaluation: {input SDR: ΔSDR}} for the card")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty folder")
    push = commands.add_parser("push", help="publish a checkpoint or exported folder on the Hub (one commit)")
    push.add_argument("source", type=Path, help="a .ckpt or a folder written by declip zoo export")
    push.add_argument("--repo-id", required=True, help="ORG/NAME")
    push.add_argument("--revision", help="branch to commit to (created if missing; default main)")
    push.add_argument("--private", action="store_true", help="create the repository private")
    blend = commands.add_parser(
        "blend", help="two models as one: each sample mixed by the weight that restores the input clipped again best"
    )
    blend.add_argument("primary", help="zoo name or model folder (taken alone where the fit finds nothing)")
    blend.add_argument("secondary", help="zoo name or model folder")
    blend.add_argument("out", type=Path, help="the folder to write")
    blend.add_argument("--g", type=float, default=1.25, help="the second clipping's level is 1/g of the input's")
    blend.add_argument("--span", type=int, default=131072, help="samples each weight is fitted over")
    blend.add_argument("--name", help="model name on the card (default: the folder's name)")
    blend.add_argument("--metrics", type=Path, help="JSON {evaluation: {input SDR: ΔSDR}} for the card")
    blend.add_argument("--overwrite", action="store_true", help="replace a non-empty folder")
    return parser


def _metrics(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the metrics JSON ({error})") from error


def run_zoo(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        from declip.zoo import entries

        items = [entry.as_dict() for entry in entries().values()]
        if args.json:
            print(json.dumps(items, indent=2))
            return 0
        print(f"{'name':22} {'repo id':30} {'revision':12} {'regime':10} {'rate':>6} {'ch':>3} {'params':>8}  score")
        for item in items:
            revision = (item["revision"] or "unpublished")[:12]
            print(
                f"{item['name']:22} {item['repo_id']:30} {revision:12} {item['regime']:10} "
                f"{item['sample_rate']:>6} {item['channels']:>3} {item['params']:>8}  {item['headline']}"
            )
        return 0
    if args.command == "download":
        from declip.zoo import entries, hub
        from declip.zoo.load import load_folder

        known = entries()
        if args.ref in known:
            item = known[args.ref]
            if item.revision is None:
                raise ConfigError(f"{args.ref} is not published on the Hub yet; it loads from zoo/{args.ref}")
            repo_id, revision, digest = item.repo_id, item.revision, item.sha256
        else:
            (repo_id, revision), digest = hub.parse_ref(args.ref), None
        folder = hub.download(repo_id, revision)
        load_folder(folder, expected_sha256=digest)  # check it loads before saying so
        print(folder)
        return 0
    if args.command == "export":
        from declip.zoo.export import export_checkpoint

        out = export_checkpoint(args.checkpoint, args.out, args.name, _metrics(args.metrics), overwrite=args.overwrite)
        print(f"exported {args.checkpoint} -> {out}")
        return 0
    if args.command == "blend":
        from declip.zoo.blend import blend_folders

        out = blend_folders(
            args.primary, args.secondary, args.out, args.g, args.span, args.name, _metrics(args.metrics), args.overwrite
        )
        print(f"blended {args.primary} and {args.secondary} -> {out}")
        return 0
    from declip.zoo.export import export_checkpoint
    from declip.zoo.hub import parse_ref, push

    parse_ref(args.repo_id)
    if args.source.is_dir():
        commit = push(args.source, args.repo_id, args.revision, args.private)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = export_checkpoint(args.source, Path(tmp) / args.repo_id.split("/")[1])
            commit = push(folder, args.repo_id, args.revision, args.private)
    print(f"pushed {args.source} to {args.repo_id}@{args.revision or 'main'}: commit {commit}")
    return 0
