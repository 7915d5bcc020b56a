"""Restoration methods other than a trained network, behind the interface ``restore_file`` uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from declip.baselines import ASPADE
from declip.baselines.spline import Spline
from declip.physics import Clipping

SETTINGS = ASPADE(batch_frames=64)  # the survey's settings


class RestoreMethod(Protocol):
    """What ``declip.restore`` needs of a method: a trained model (:class:`LoadedModel`) or a
    classical one (:class:`ASPADEMethod`)."""

    sample_rate: int | None  # None: works at any rate
    channels: int  # 1: each channel on its own
    info: dict

    @property
    def device(self) -> torch.device | str: ...  # where it computes; blocks are restored there (absent: the CPU)

    @property
    def hop(self) -> int: ...  # window starts lie on this grid

    @property
    def context(self) -> int: ...  # samples each side a window needs to match one pass

    def estimate(
        self,
        items: Tensor,
        physics: Clipping,
        chunk: int,
        batch_size: int,
        progress: Callable | None = None,
        span: tuple[int, int] | None = None,
    ) -> Tensor:
        """The estimate of ``items`` ``(n, channels, time)`` at ``sample_rate``, before the projection."""
        ...


class _Classical:
    """A restorer ``settings(y, physics)`` run on whole blocks (no network windows), on ``device``."""

    device: str
    settings: Callable[[Tensor, Clipping], Tensor]

    def estimate(
        self,
        items: Tensor,
        physics: Clipping,
        chunk: int,
        batch_size: int,
        progress: Callable | None = None,
        span: tuple[int, int] | None = None,
    ) -> Tensor:
        """The estimate of ``items`` ``(n, channels, time)`` (``chunk``, ``batch_size``, ``span`` unused)."""
        device = self.device
        estimate = self.settings(items.to(device), Clipping(physics.high.to(device), physics.low.to(device)))
        if progress is not None:
            progress(1, 1)
        return estimate.cpu()


@dataclass
class ASPADEMethod(_Classical):
    """The A-SPADE baseline (``declip restore --method aspade``): any rate, each channel on its own.

    ``context`` is one window, so streaming blocks see every frame that touches them; frames run
    ``batch_frames`` at a time (64 frames of 8192 samples: about 100 MB)."""

    device: str = "cpu"
    settings: ASPADE = field(default_factory=lambda: SETTINGS)
    sample_rate: int | None = None  # works at the file's own rate
    channels: int = 1
    info: dict = field(default_factory=lambda: {"regime": "aspade"})

    @property
    def hop(self) -> int:
        return self.settings.hop

    @property
    def context(self) -> int:
        return self.settings.window


@dataclass
class SplineMethod(_Classical):
    """Cubic interpolation of each clipped run from its reliable neighbours (``declip restore --method
    spline``): any rate, each channel on its own, far faster than real time. ``context`` bounds the
    clipped runs that streaming blocks restore exactly as one pass (longer runs are rare)."""

    device: str = "cpu"
    settings: Spline = field(default_factory=Spline)
    sample_rate: int | None = None
    channels: int = 1
    info: dict = field(default_factory=lambda: {"regime": "spline"})
    hop: int = 1
    context: int = 8192
