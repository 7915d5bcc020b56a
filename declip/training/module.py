"""The LightningModule: any backbone, any list of losses, declipping metrics per clip level."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from declip.config import config_of, instantiate
from declip.errors import ConfigError
from declip.losses import Loss
from declip.metrics import DEFAULT_LEVELS, DeclippingMetrics
from declip.models import Declipper
from declip.physics import Clipping
from declip.training.checkpoint import network_weights


def _unique(names: list[str]) -> list[str]:
    """Loss names for logging, numbered where a name repeats (``supervised``, ``supervised_2``)."""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def regime_of(losses: Sequence[Loss]) -> str:
    """``"supervised"``, ``"mc"``, ``"mc+ei"`` (or the loss names joined by ``+``)."""
    return "+".join(loss.name for loss in losses)


class DeclipModule(L.LightningModule):
    """Train a :class:`Declipper` around ``backbone`` with the sum of ``losses``.

    Batches are dicts with ``y`` ``(batch, channels, time)``, thresholds ``high``/``low``
    (broadcastable), and optionally the clean ``x`` and ``input_sdr``. ``x`` reaches only the
    losses that declare ``requires_clean``; the self-supervised losses never see it.

    Args:
        backbone: network ``(batch, 2*channels, time) -> (batch, channels, time)``.
        losses: one loss or a list, summed (e.g. ``[MCLoss(), EILoss(weight=λ)]``).
        consistent_output: make every estimate consistent by construction (see :class:`Declipper`).
        lr: Adam learning rate.
        lr_schedule: ``"constant"``, or ``"cosine"``: decay to ``lr / 100`` over the trainer's
            ``max_steps`` (the synthetic and music runs drift after their peak at a constant rate).
        sample_rate: rate of the audio the model is trained for (Hz); travels with checkpoints.
        levels: input SDRs (dB) of the metric buckets.
        init_weights: fine-tune: the network starts ``fit`` from these weights (a model folder such as
            ``zoo/unet-music-reclip``, its ``model.safetensors``, or a ``.ckpt``); read when ``fit``
            sets up, so a run resumed with ``--ckpt_path`` continues from the checkpoint's weights.
    """

    def __init__(
        self,
        backbone: nn.Module,
        losses: Loss | list[Loss],
        consistent_output: bool = False,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        sample_rate: int = 44100,
        levels: Sequence[float] = DEFAULT_LEVELS,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        if lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule must be 'constant' or 'cosine'; got {lr_schedule!r}")
        backbone = instantiate(backbone)
        losses = [instantiate(loss) for loss in (losses if isinstance(losses, (list, tuple)) else [losses])]
        self.save_hyperparameters(ignore=["backbone", "losses"])
        # Store configs, not objects: load_from_checkpoint rebuilds them with no extra argument.
        self.hparams["backbone"] = config_of(backbone)
        self.hparams["losses"] = [config_of(loss) for loss in losses]
        self.model = Declipper(backbone, consistent=consistent_output)
        self.losses = nn.ModuleList(losses)
        self.loss_names = _unique([loss.name for loss in losses])
        self.val_metrics = DeclippingMetrics(levels)
        self.test_metrics = DeclippingMetrics(levels)

    @classmethod
    def from_model(cls, model: Declipper, losses: Loss | list[Loss], sample_rate: int, **kwargs: Any) -> DeclipModule:
        """A module around a copy of the trained ``model`` (to adapt or test it); ``kwargs`` as in
        the constructor."""
        module = cls(
            instantiate(config_of(model.backbone)), losses, consistent_output=model.consistent,
            sample_rate=sample_rate, **kwargs,
        )  # fmt: skip
        module.model.load_state_dict(model.state_dict())
        return module

    def setup(self, stage: str) -> None:
        # Lightning calls this before it restores a --ckpt_path, which then replaces these weights
        if stage == "fit" and self.hparams.get("init_weights"):
            self.model.load_state_dict(network_weights(self.hparams.init_weights))

    @property
    def regime(self) -> str:
        return regime_of(self.losses)

    @property
    def channels(self) -> int:
        return self.model.backbone.channels

    def forward(self, y: Tensor, physics: Clipping) -> Tensor:
        return self.model(y, physics)

    def physics_of(self, batch: dict[str, Tensor]) -> Clipping:
        """The clipping operator of a batch; checks the batch matches the model's channels."""
        if batch["y"].shape[1] != self.channels:
            raise ConfigError(
                f"the data gives {batch['y'].shape[1]} channel(s) but the backbone takes {self.channels}: "
                "make model.backbone.init_args.channels and the data's channels agree"
            )
        return Clipping(batch["high"], batch["low"])

    def _loss_terms(self, batch: dict[str, Tensor], x_net: Tensor | None, physics: Clipping) -> dict[str, Tensor]:
        terms = {}
        for name, loss in zip(self.loss_names, self.losses):
            clean = batch.get("x") if loss.requires_clean else None
            terms[name] = loss(x_net, batch["y"], physics, self.model, clean)
        terms["loss"] = sum(terms.values())
        return terms

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        physics = self.physics_of(batch)
        needed = any(loss.uses_estimate for loss in self.losses)  # not for re-clipping alone
        terms = self._loss_terms(batch, self.model(batch["y"], physics) if needed else None, physics)
        for name, value in terms.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=batch["y"].shape[0])
        return terms["loss"]

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, stage: str, metrics: DeclippingMetrics) -> None:
        physics = self.physics_of(batch)
        y = batch["y"]
        x_net = self.model(y, physics)
        if "x" in batch or not any(loss.requires_clean for loss in self.losses):
            # random parts of a loss (EI's gains) repeat from one evaluation to the next,
            # and leave the training random stream untouched
            with torch.random.fork_rng(devices=[y.device] if y.is_cuda else []):
                torch.manual_seed(batch_idx)
                terms = self._loss_terms(batch, x_net, physics)
            for name, value in terms.items():
                self.log(f"{stage}/{name}", value, sync_dist=True, batch_size=y.shape[0])
        if "x" in batch:
            metrics.update(physics.project(x_net, y), batch["x"], y, physics.masks(y).clipped, batch["input_sdr"])

    def _log_metrics(self, stage: str, metrics: DeclippingMetrics) -> None:
        if metrics.update_count == 0:
            return
        values = metrics.compute()
        for name, value in values.items():
            self.log(f"{stage}/{name}", value, prog_bar=name == "delta_sdr")
        metrics.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val", self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test", self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        physics = self.physics_of(batch)
        return physics.project(self.model(batch["y"], physics), batch["y"])

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        if self.hparams.get("lr_schedule", "constant") == "constant":
            return optimizer
        steps = self.trainer.max_steps
        if steps is None or steps < 1:
            raise ConfigError("lr_schedule 'cosine' needs trainer.max_steps (the length of the decay)")
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=self.hparams.lr / 100)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
