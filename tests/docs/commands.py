"""The shell commands of the fenced ```bash blocks in README.md and docs/*.md, and their not-run marks.

A block preceded by the line ``<!-- not run: REASON -->`` is not run; neither is a command whose
trailing comment holds ``not run: REASON``. Lines ending in ``\\`` and quotes left open continue a
command on the next line; whole-line comments are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```bash[ \t]*\n(.*?)^```", re.M | re.S)
BLOCK_MARK = re.compile(r"^<!--\s*not run:\s*(.*?)\s*-->$")
LINE_MARK = re.compile(r"not run:\s*(.*)")


@dataclass(frozen=True)
class Command:
    """One command as written (continuations joined), where it is, and why it is not run (None: run it)."""

    file: str
    line: int
    text: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _open_quote(text: str) -> str | None:
    """The quote character left open at the end of ``text`` (shell rules, roughly), or None."""
    quote = None
    for index, char in enumerate(text):
        if quote is None and char in "'\"" and (index == 0 or text[index - 1] != "\\"):
            quote = char
        elif char == quote and (quote == "'" or text[index - 1] != "\\"):
            quote = None
    return quote


def _split_comment(text: str) -> tuple[str, str]:
    """``text`` without its trailing ``# comment``, and the comment (a ``#`` after a blank, outside quotes)."""
    quote = None
    for index, char in enumerate(text):
        if quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
        elif char == "#" and quote is None and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip(), text[index + 1 :].strip()
    return text.rstrip(), ""


def block_commands(block: str, file: str, first_line: int, not_run: str | None = None) -> list[Command]:
    """The commands of one block whose first line is line ``first_line`` of ``file``."""
    lines, found, index = block.splitlines(), [], 0
    while index < len(lines):
        start, text = index, lines[index]
        index += 1
        while index < len(lines) and (text.endswith("\\") or _open_quote(text)):
            joined = text.endswith("\\")  # a continued line; otherwise an open quote spans the newline
            text = f"{text[:-1].rstrip()} {lines[index].lstrip()}" if joined else f"{text}\n{lines[index]}"
            index += 1
        if not text.strip() or text.strip().startswith("#"):
            continue
        command, comment = _split_comment(text.strip())
        mark = LINE_MARK.search(comment)
        reason = not_run if not_run is not None else (mark.group(1).strip() if mark else None)
        found.append(Command(file, first_line + start, command, reason))
    return found


def documented_commands(path: Path, root: Path) -> list[Command]:
    """Every command in the ```bash blocks of ``path`` (named relative to ``root``)."""
    text, name, found = path.read_text(), str(path.relative_to(root)), []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        mark = BLOCK_MARK.match(before)
        first_line = text[: match.start(1)].count("\n") + 1
        found += block_commands(match.group(1), name, first_line, mark.group(1) if mark else None)
    return found
