"""``LoadedModel``: a trained declipper with what inference needs to know about it (rate, channels, hop,
receptive field, precision), however it was loaded (a zoo folder, a Hub repo, a ``.ckpt``, an adapted copy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from declip.errors import ConfigError
from declip.inference.chunks import receptive_field, restore_chunked
from declip.inference.precision import resolve
from declip.models import Declipper
from declip.physics import Clipping


@dataclass
class LoadedModel:
    """A trained declipper with what inference needs to know about it."""

    model: Declipper
    sample_rate: int
    channels: int
    hop: int
    context: int
    info: dict = field(default_factory=dict)  # config.json of a released model: regime, scores, ...
    precision: str = "fp32"  # or "bf16" (autocast); see declip.inference.precision

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> LoadedModel:
        from declip.training import DeclipModule
        from declip.training.checkpoint import refusal, safe_types

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such model file; pass a Lightning .ckpt written by declip fit")
        try:  # weights_only: a crafted file is refused, never run
            with safe_types():
                module = DeclipModule.load_from_checkpoint(path, map_location=device, weights_only=True)
        except Exception as error:  # torch.load and Lightning raise many kinds for a foreign or broken file
            raise refusal(path, error) from error
        info = {"regime": module.regime, "checkpoint": str(path)}
        return cls.from_module_model(module.model.eval(), module.hparams.sample_rate, module.channels, info)

    @classmethod
    def from_module_model(
        cls, model: Declipper, sample_rate: int, channels: int, info: dict | None = None
    ) -> LoadedModel:
        hop = getattr(model.backbone, "hop", 1)
        context = receptive_field(model, channels) + hop
        return cls(model, sample_rate, channels, hop, context, dict(info or {}))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters(), torch.empty(0)).device

    def with_precision(self, precision: str) -> LoadedModel:
        """This model computing in ``precision`` (``auto``, ``fp32``, ``bf16``; see :func:`resolve`)."""
        return replace(self, precision=resolve(precision, self.model, self.channels, self.device))

    def estimate(
        self,
        items: Tensor,
        physics: Clipping,
        chunk: int,
        batch_size: int,
        progress: Callable | None = None,
        span: tuple[int, int] | None = None,
    ) -> Tensor:
        """The network's output for ``items`` ``(n, channels, time)`` at the model's rate, in chunks
        (only in ``span`` when given)."""
        return restore_chunked(
            self.model, items, physics, chunk, self.context, self.hop, batch_size, progress,
            skip_unclipped=True,  # the projection keeps y wherever nothing is clipped
            precision=self.precision, span=span,
        )  # fmt: skip
