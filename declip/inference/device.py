"""Where a model runs: the ``--device auto|cpu|cuda`` choice of ``declip restore`` and ``declip adapt``, and the
app's default."""

from __future__ import annotations

import torch

from declip.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str = "auto") -> str:
    """``"cuda"`` or ``"cpu"`` for ``choice``: ``auto`` takes the GPU when torch sees one. Raises
    ``ConfigError`` for ``cuda`` when it sees none."""
    if choice not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}; got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA GPU here; use --device cpu (or auto)")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice
