"""Read Lightning checkpoints without running code: ``torch.load(weights_only=True)`` and one-line refusals.

A ``.ckpt`` is a pickle; unpickling an arbitrary one can run any command. Every path in declip that
reads a checkpoint a user points at goes through :func:`load_checkpoint` (or passes
``weights_only=True`` to Lightning inside :func:`safe_types`), so a crafted file is refused, never run.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path, PosixPath, PurePosixPath
from typing import Any

import torch

from declip.errors import ConfigError

# Types a checkpoint written by ``declip fit`` may hold beyond tensors, containers and numbers: paths
# in data hyper-parameters. Nothing here runs code when unpickled.
SAFE_TYPES = [Path, PosixPath, PurePosixPath]
# torch's paragraphs around the cause of a failed weights-only load (one suggests weights_only=False)
_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation of torch.load")


@contextlib.contextmanager
def safe_types() -> Iterator[None]:
    """Within this block, ``torch.load(weights_only=True)`` also accepts :data:`SAFE_TYPES`."""
    with torch.serialization.safe_globals(SAFE_TYPES):
        yield


def refusal(path: str | Path, error: BaseException) -> ConfigError:
    """One line for a checkpoint that could not be read: refused pickled code, or not a checkpoint."""
    text = str(error)
    blocked = re.search(r"GLOBAL ([\w.]+)", text)
    if blocked:
        return ConfigError(
            f"{path}: refused: it holds pickled Python objects ({blocked.group(1)}) that a declip checkpoint never "
            "has; declip does not run code from checkpoints: use a .ckpt written by declip fit, or a model folder"
        )
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(_TORCH_ADVICE)]
    cause = (lines[0].removeprefix("WeightsUnpickler error:").strip()[:200] if lines else "") or type(error).__name__
    return ConfigError(f"{path}: not a declip checkpoint ({cause}); pass one written by declip fit")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, read with ``weights_only=True``; :class:`ConfigError` (one line) else."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint")
    try:
        with safe_types():
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip and torch errors of a crafted, foreign or broken file
        raise refusal(path, error) from error
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{path}: not a Lightning checkpoint (holds a {type(checkpoint).__name__}, not a dict)")
    return checkpoint


def network_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The :class:`~declip.models.Declipper` weights at ``path``: a model folder's ``model.safetensors``
    (or the folder itself), or a ``.ckpt`` written by ``declip fit``; :class:`ConfigError` (one line) else."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ConfigError(f"{path}: no such weights file")
        from safetensors.torch import load_file

        return load_file(path)
    state = load_checkpoint(path).get("state_dict", {})
    weights = {key.removeprefix("model."): value for key, value in state.items() if key.startswith("model.")}
    if not weights:
        raise ConfigError(f"{path}: holds no network weights (no state_dict entry under 'model.')")
    return weights
