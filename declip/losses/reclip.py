"""Re-clipping: clip the measurement harder and learn to give back the samples that were reliable."""

from __future__ import annotations

import torch
from torch import Tensor

from declip.config import capture_init
from declip.errors import ConfigError
from declip.losses.base import Loss, Reconstructor, scaled_square_error
from declip.losses.mc import consistency_error, consistency_violation
from declip.physics import Clipping
from declip.transforms import AmplitudeScale


class ReclipLoss(Loss):
    """:math:`MC(f(\\eta_{\\theta/g}(y)); y, \\theta)` with a random ``g >= 1`` per example.

    The measurement ``y`` is clipped again at thresholds divided by ``g``; the network restores that
    and is scored against ``y`` itself with the consistency loss of :class:`MCLoss`. Samples between
    :math:`\\theta/g` and :math:`\\theta` are reliable in ``y``: they are exact targets taken from the
    recording, not from the network's own estimate (as in :class:`EILoss`). Samples clipped in ``y``
    are only asked to lie beyond :math:`\\theta`. No clean signal is needed.

    When adapting a trained model (``declip adapt``), ``anchor > 0`` adds
    :math:`\\text{anchor}\\cdot\\|M_c(f(\\eta_{\\theta/g}(y)) - f_0(y))\\|^2`: on the samples clipped in
    ``y``, where ``y`` only says "beyond θ", the restoration is also pulled toward the frozen base
    model's restoration of ``y``. Without it, adapting on one heavily clipped recording teaches
    smaller peaks than the base model knew (docs/results.md). The base model is set by
    :func:`declip.training.adapt.adapt`; training from scratch has none and refuses an anchor.

    After lossy coding (clip, then code), the samples of a smeared plateau that dip inside the
    band's edge are reliable in ``y`` but not the signal's: ``guard > 0`` drops the reliable samples
    within ``guard`` samples of a clipped one from the targets (they are asked nothing), so the
    network is not taught the plateau's flat top.

    ``relative``: each example's error is divided by the error of giving the harder clipping back
    unchanged (for hard clipping without a guard, :math:`\\|y - \\eta_{\\theta/g}(y)\\|^2`, what the harder
    clipping took), so a model that gives its input back scores 1 and a perfect one 0, and the ratios are
    averaged. Without it the heavily re-clipped examples, whose errors are largest, decide the gradient; a
    model whose few thousand parameters are shared by every level (:class:`~declip.models.UnfoldedSPADE`)
    then learned heavy clipping at the expense of light on music (docs/results.md). Meant for models whose
    output is consistent (reliable samples kept): an inconsistent one keeps an error on the examples
    re-clipped least, whose ratios then dominate. Not with ``anchor`` (its term is not relative).

    Args:
        weight: the factor on this loss.
        g_min, g_max, distribution: the law of ``g`` (both at least 1), see :class:`AmplitudeScale`.
        anchor: the factor on the pull toward the base model on clipped samples (0: none).
        guard: reliable samples this close to a clipped one (in samples) are no target (0: all are).
        relative: each example's error relative to what the harder clipping removed (see above).
    """

    name = "reclip"
    uses_estimate = False  # it runs the network on the harder clipping only

    @capture_init
    def __init__(
        self,
        weight: float = 1.0,
        g_min: float = 1.0,
        g_max: float = 2.0,
        distribution: str = "log-uniform",
        anchor: float = 0.0,
        guard: int = 0,
        relative: bool = False,
    ) -> None:
        super().__init__(weight)
        if g_min < 1:
            raise ConfigError(f"ReclipLoss clips harder, so g_min must be at least 1; got {g_min}")
        if anchor < 0:
            raise ConfigError(f"ReclipLoss anchor must be >= 0; got {anchor}")
        if guard < 0:
            raise ConfigError(f"ReclipLoss guard must be >= 0 samples; got {guard}")
        if relative and anchor > 0:
            raise ConfigError("ReclipLoss relative: true does not combine with anchor > 0; set one of them")
        self.transform = AmplitudeScale(g_min, g_max, distribution)
        self.anchor, self.guard, self.relative = anchor, guard, relative
        self._base: tuple[Reconstructor, ...] = ()  # a tuple keeps the frozen model out of state_dict and optimizer

    @property
    def needs_base(self) -> bool:
        """Whether :meth:`set_base` must be called before training (``anchor > 0``)."""
        return self.anchor > 0

    def set_base(self, model: Reconstructor) -> None:
        """The frozen model whose restoration of ``y`` anchors clipped samples (``anchor > 0``)."""
        self._base = (model,)

    def forward(
        self, x_net: Tensor, y: Tensor, physics: Clipping, model: Reconstructor, x: Tensor | None = None
    ) -> Tensor:
        g = self.transform.sample(y.shape[0], device=y.device).to(y)
        harder = Clipping(physics.high.to(y) / g, physics.low.to(y) / g)
        y2 = harder(y)
        x2 = model(y2, harder)
        given_back = y2  # what a model that restores nothing returns
        if self.guard:
            near = _near_clipped(physics.masks(y).clipped, self.guard)
            x2 = torch.where(near, y, x2)  # no error where no target
            given_back = torch.where(near, y, y2)
        if self.relative:
            loss = _relative_consistency_error(x2, given_back, y, physics)
        else:
            loss = consistency_error(x2, y, physics)
        if self.needs_base:
            if not self._base:
                raise ConfigError(
                    "ReclipLoss with anchor > 0 needs a base model to anchor to: use it with declip adapt, "
                    "or set anchor: 0 to train from scratch"
                )
            with torch.no_grad():
                target = self._base[0](y, physics)
            off = torch.where(physics.masks(y).clipped, x2 - target, torch.zeros_like(x2))
            loss = loss + self.anchor * scaled_square_error(off, torch.zeros_like(off), physics)
        return self.weight * loss


def _near_clipped(clipped: Tensor, guard: int) -> Tensor:
    """Reliable samples within ``guard`` samples of a clipped one, ``(batch, channels, time)`` bool."""
    dilated = torch.nn.functional.max_pool1d(clipped.float().flatten(0, 1)[:, None], 2 * guard + 1, 1, guard)
    return (dilated.reshape(clipped.shape) > 0) & ~clipped


def _relative_consistency_error(x2: Tensor, given_back: Tensor, y: Tensor, physics: Clipping) -> Tensor:
    """Per example, the consistency error of ``x2`` over that of ``given_back`` (the harder clipping returned
    unchanged), averaged over the examples where the latter is not zero; zero (with a graph) if none."""
    err = consistency_violation(x2, y, physics).pow(2).flatten(1).sum(1)
    removed = consistency_violation(given_back, y, physics).pow(2).flatten(1).sum(1)
    lost = removed > 0
    if not bool(lost.any()):
        return (x2 * 0).sum()
    return (err[lost] / removed[lost]).mean()
