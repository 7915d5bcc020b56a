"""The ``declip`` command. Thin: parse, call the library, report."""

from __future__ import annotations

import sys

from declip.errors import ConfigError

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
USAGE = """usage: declip COMMAND [ARGS]

commands:
  fit        train a declipper (LightningCLI: --config configs/synthetic.yaml, --print_config)
  validate   score a checkpoint on the validation set
  test       score a checkpoint on the test set
  predict    run a checkpoint on the predict set
  data       build training corpora: declip data build music|stems|solo --out DIR
  restore    restore clipped recordings: declip restore INPUT... -o OUT [--model REF] [--adapt N]
  analyze    how each recording is clipped: declip analyze FILE... [--json] [--plot OUT.png]
  adapt      fine-tune a model on clipped recordings alone: declip adapt INPUT... -o OUTMODEL
  zoo        released models: declip zoo list|download|export|push
  bench      benchmarks: declip bench sqam --data DIR --model REF [--method aspade]
  app        a local web page to restore and compare: declip app [--model REF] [--port N]

Each command takes --help."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command = args[0]
    try:
        if command in LIGHTNING_COMMANDS:
            from declip.cli.train import run_lightning

            run_lightning(args)
        elif command == "restore":
            from declip.cli.restore import run_restore

            return run_restore(args[1:])
        elif command == "analyze":
            from declip.cli.analyze import run_analyze

            return run_analyze(args[1:])
        elif command == "adapt":
            from declip.cli.adapt import run_adapt

            return run_adapt(args[1:])
        elif command == "bench":
            from declip.cli.bench import run_bench

            return run_bench(args[1:])
        elif command == "zoo":
            from declip.cli.zoo import run_zoo

            return run_zoo(args[1:])
        elif command == "data":
            from declip.cli.data import run_data

            return run_data(args[1:])
        elif command == "app":
            from declip.cli.app import run_app

            return run_app(args[1:])
        else:
            print(f"declip: error: unknown command {command!r}\n{USAGE}", file=sys.stderr)
            return 2
    except Exception as error:
        message = _explain(error)
        if message is None:
            raise
        print(f"declip: error: {message}", file=sys.stderr)
        return 2
    return 0


_BOILERPLATE = (
    "Expected a",
    "Not a valid subclass",
    "Subclass types expect",
    "a class path",
    "a dict ",
    "Does not validate",
    "Given value",
    "Subtypes:",
    "Errors:",
)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack: list[BaseException | None] = [error]
    while stack:
        cause = stack.pop()
        if cause is not None and all(cause is not s for s in seen):
            seen.append(cause)
            stack += [cause.__cause__, cause.__context__]
    return seen


def _explain(error: BaseException) -> str | None:
    """One line for a configuration mistake, or None for anything else (a real failure keeps its traceback).

    jsonargparse explains a failed class_path or a rejected value over many lines; keep the line that
    names the cause."""
    for cause in _chain(error):
        if isinstance(cause, ConfigError):
            return str(cause)
    text = str(error)
    if type(error).__name__ != "ArgumentError" and "Does not validate" not in text:
        return None
    from declip.cli.config_errors import explain_parser_error

    if (line := explain_parser_error(text)) is not None:
        return line
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("- Problem with given class_path"):
            path = line.split("'")[1] if "'" in line else line
            reason = lines[index + 1] if index + 1 < len(lines) else "not importable"
            return f"unknown class_path {path!r} ({reason}); check the spelling, e.g. declip.models.UNet"
    for line in lines:
        if line.startswith("- ") and not line[2:].startswith(_BOILERPLATE):
            return line[2:]
    return lines[0] if lines else "invalid arguments"


if __name__ == "__main__":
    sys.exit(main())
