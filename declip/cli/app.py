"""``declip app [--model REF ...] [--host 127.0.0.1] [--port N]``: serve the restore-and-compare page."""

from __future__ import annotations

import argparse


def run_app(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="declip app", description="Serve a local web page to restore a recording and compare it with the input."
    )
    parser.add_argument(
        "--model", action="append", metavar="REF",
        help="a model to offer first (zoo name, ORG/NAME[@REVISION], folder or .ckpt); repeat for more; "
        "the zoo's models follow",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, help="port (default: 7860, or the next free one)")
    args = parser.parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535; got {args.port}")
    try:
        from declip.app import serve
    except ImportError as error:
        parser.error(f"the page needs gradio ({error}); install it with: pip install 'declip[app]'")
    serve(args.model, host=args.host, port=args.port)
    return 0
