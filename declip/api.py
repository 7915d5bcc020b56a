"""The public entry points that resolve a model by name: ``declip.restore`` and ``declip.load_model``.

This thin layer sits above the zoo (names, Hub repos, folders -> a :class:`LoadedModel`) and inference
(a loaded model -> restored audio), so that inference never looks a model up by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from declip.errors import ConfigError
from declip.inference.loaded import LoadedModel
from declip.inference.methods import RestoreMethod
from declip.inference.restore import restore_array, restore_file
from declip.zoo.load import load_model as _load_model
from declip.zoo.registry import DEFAULT_MODEL


def load_model(ref: str | Path, device: str = "cpu", precision: str = "auto") -> LoadedModel:
    """Load a declipper by zoo name, Hub repo ``ORG/NAME[@REVISION]``, model folder or ``.ckpt``;
    see :func:`declip.zoo.load.load_model`."""
    return _load_model(ref, device, precision)


def restore(
    audio: str | Path | np.ndarray | Tensor,
    model: str | Path | RestoreMethod = DEFAULT_MODEL,
    sample_rate: int | None = None,
    output: str | Path | None = None,
    threshold: float | None = None,
    precision: str = "auto",
    **options,
):
    """Restore clipped audio: the function behind ``declip restore``.

    - ``audio`` an array ``(frames, channels)`` (or a tensor ``(channels, frames)``) with
      ``sample_rate``: returns the restored array (or tensor) of the same shape.
    - ``audio`` a file path and ``output`` a path: writes the restored WAV and returns the account
      line (``options``: ``chunk_seconds``, ``batch_size``, ``subtype``, ``normalize``, ``overwrite``,
      ``decode_threads``, ``workers``).
    - either: ``alternatives``, other settings of the model by name (``{"probe_iterations=0": model2}``, each a
      loaded model), of which re-clipping ``choice_seconds`` of the recording picks one or ``model`` (``declip
      restore --choose``; :mod:`declip.inference.choice`).

    ``model`` is a loaded model or any reference :func:`declip.load_model` takes (zoo name, Hub repo
    ``ORG/NAME[@REVISION]``, model folder, ``.ckpt``); ``threshold`` ``None`` detects the clip level.
    ``precision`` applies to a model loaded here (``auto``, ``fp32``, ``bf16``); a loaded model keeps its own.
    """
    if isinstance(model, (str, Path)):
        model = _load_model(model, precision=precision)
    if isinstance(audio, (str, Path)):
        if output is None:
            raise ConfigError("restoring a file needs an output path")
        return restore_file(audio, output, model, threshold, **options)
    if sample_rate is None:
        raise ConfigError("restoring an array needs its sample_rate")
    if isinstance(audio, np.ndarray):
        tensor = torch.from_numpy(np.atleast_2d(audio.T).astype(np.float32))
        restored, _ = restore_array(tensor, sample_rate, model, threshold, **options)
        return restored.numpy().T.reshape(audio.shape)
    restored, _ = restore_array(audio, sample_rate, model, threshold, **options)
    return restored
