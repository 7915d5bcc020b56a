"""Two declippers mixed where the clipped recording itself says which restores it better.

Clip the input again, harder, and each backbone's restoration of that can be scored on the samples the second
clipping hid: the input still holds them. :class:`Blend` fits, around every sample, the mix of two backbones that
gives those samples back best (least squares, a weight in [0, 1]), and mixes their restorations of the input as it
is with it. No clean audio is needed, and the weight follows the material: on the validation splits it came out near
0 on the Bach chorales (where the unfolded model alone is far better) and 0.13 to 0.83 on game music (where the UNet
trained on it adds to it): docs/results.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from declip.config import capture_init
from declip.errors import ConfigError
from declip.models.reach import reach
from declip.models.trusted import build_backbone, checked_class


def consistent(correction: Tensor, signed: Tensor) -> Tensor:
    """A correction made consistent with the signed clip mask: zero on reliable samples, outward on clipped ones."""
    outward = torch.where(signed > 0, correction.clamp(min=0), correction.clamp(max=0))
    return torch.where(signed != 0, outward, torch.zeros_like(correction))


class Blend(nn.Module):
    """``(batch, 2*channels, time) -> (batch, channels, time)``: ``(1 - w) primary + w secondary``, both corrections
    made consistent, with a weight ``w`` per sample chosen from the input alone.

    The input (``y/s`` and its signed mask, as every backbone sees it) is clipped again at ``1/g`` of its level
    (per row and polarity, the level read from its clipped samples); both backbones restore that, scaled as they see
    any input (its clipping scale at 1); over the ``span``
    samples centred on each sample, ``w`` minimises the squared error of the mix on the samples the second clipping
    hid (closed form, clamped to [0, 1]). A window with no such sample, or where the two agree there, takes
    ``primary`` alone. A mix of consistent estimates is consistent. Each backbone runs twice: slower than the slower
    of the two by more than half again (the input clipped again has more to restore).

    Args:
        primary: a backbone, or its ``{"class_path": "declip.models...", "init_args": {...}}``.
        secondary: the other one; both map ``(batch, 2*channels, time)`` to a correction.
        channels: audio channels (each channel gets its own weights).
        g: the second clipping's level is ``1/g`` of the input's, ``g > 1``.
        span: samples each weight is fitted over, at least 1: those within ``span // 2`` of the sample (an even span
            counts one more). The level is read from the clipped samples each call sees, so chunks agree with one
            pass exactly where the clipped samples sit on their plateau (hard clipping), to within the detection
            tolerance otherwise.
    """

    @capture_init
    def __init__(
        self, primary: dict | nn.Module, secondary: dict | nn.Module, channels: int = 1, g: float = 1.25,
        span: int = 131072,
    ) -> None:  # fmt: skip
        super().__init__()
        self.check(g, span)
        given = {"primary": primary, "secondary": secondary}
        for role, config in given.items():  # both checked before either is built
            if not isinstance(config, nn.Module):
                checked_class(config, f"Blend {role}")
        built = {
            role: config if isinstance(config, nn.Module) else build_backbone(config, f"Blend {role}")
            for role, config in given.items()
        }
        self.primary, self.secondary = built["primary"], built["secondary"]
        for role, backbone in (("primary", self.primary), ("secondary", self.secondary)):
            if getattr(backbone, "channels", channels) != channels:
                raise ConfigError(f"Blend has {channels} channel(s) but its {role} has {backbone.channels}")
        self.channels, self.g, self.span = channels, g, span
        self._reach: int | None = None

    @staticmethod
    def check(g: float, span: int) -> None:
        """One line naming the bad setting, before anything is built."""
        if not g > 1:
            raise ConfigError(f"Blend g must be above 1 (the second clipping is harder); got {g}")
        if span < 1:
            raise ConfigError(f"Blend span must be at least 1 sample; got {span}")

    @property
    def hop(self) -> int:
        """Shifts by multiples of both backbones' hops shift the output alike."""
        return math.lcm(getattr(self.primary, "hop", 1), getattr(self.secondary, "hop", 1))

    @property
    def receptive_field(self) -> int:
        """The farther backbone's reach plus half the span (computed once, by a gradient probe where undeclared)."""
        if self._reach is None:
            self._reach = max(reach(self.primary, self.channels), reach(self.secondary, self.channels))
        return self._reach + self.span // 2 + 1

    def forward(self, inp: Tensor) -> Tensor:
        u, signed = inp[:, : self.channels], inp[:, self.channels :]
        if not bool((signed != 0).any()):
            return torch.zeros_like(u)
        weight = self.weight(u, signed)
        primary = consistent(self.primary(inp), signed)
        if not bool((weight > 0).any()):
            return primary
        return primary + weight * (consistent(self.secondary(inp), signed) - primary)

    def weight(self, u: Tensor, signed: Tensor) -> Tensor:
        """``(batch, channels, time)``: the secondary's weight around each sample, fitted on the input clipped again."""
        high, low = self._levels(u, signed)
        again = torch.minimum(torch.maximum(u, low / self.g), high / self.g)
        signed_again = (again >= high / self.g).to(u) - (again <= low / self.g).to(u)
        hidden = (signed_again != 0) & (signed == 0)
        if not bool(hidden.any()):
            return torch.zeros_like(u)
        scale = (high - low) / (2 * self.g)  # the clipping scale of the input clipped again, in the input's units
        inp = torch.cat([again / scale, signed_again], dim=1)  # as a backbone sees any input: its level at ±1
        primary = scale * consistent(self.primary(inp), signed_again)
        apart = scale * consistent(self.secondary(inp), signed_again) - primary
        missed = u - (again + primary)
        fit = self._window_sum(torch.where(hidden, missed * apart, 0))
        spread = self._window_sum(torch.where(hidden, apart * apart, 0))
        ratio = torch.where(spread > 0, fit / spread.clamp(min=torch.finfo(spread.dtype).tiny), 0)
        return ratio.clamp(0, 1).to(u.dtype)

    def _window_sum(self, values: Tensor) -> Tensor:
        """Sums over the ``span`` samples centred on each sample (float64 running sums: chunks add up as one pass)."""
        half = self.span // 2
        running = F.pad(values.double(), (half + 1, half)).cumsum(-1)
        return running[..., 2 * half + 1 :] - running[..., : -(2 * half + 1)]

    @staticmethod
    def _levels(u: Tensor, signed: Tensor) -> tuple[Tensor, Tensor]:
        """``(batch, channels, 1)`` clip levels of each row, high and low, from its clipped samples; a polarity
        with none takes the other's mirrored within the range (``high - low = 2`` in these units), or ±1."""
        inf = torch.full_like(u, math.inf)
        high = torch.where(signed > 0, u, inf).amin(-1, keepdim=True)
        low = torch.where(signed < 0, u, -inf).amax(-1, keepdim=True)
        has_high, has_low = high.isfinite(), low.isfinite()
        high = torch.where(has_high, high, torch.where(has_low, low + 2, torch.ones_like(high)))
        low = torch.where(has_low, low, torch.where(has_high, high - 2, -torch.ones_like(low)))
        return high, low
