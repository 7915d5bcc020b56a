"""Self-supervised adaptation: fine-tune a trained declipper on clipped recordings, with no clean audio.

The self-supervised losses need only the clipped signal, so a pretrained model can keep training on
exactly the material a user wants restored (``declip adapt``; ``declip restore --adapt N`` for one
file). The default is the re-clipping loss (:class:`declip.losses.ReclipLoss`): the recording
clipped again, harder, and restored toward its own reliable samples.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import signal
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import lightning as L
import torch
import yaml
from torch.utils.data import DataLoader

from declip.config import instantiate
from declip.data.recordings import ClippedRecordings, Recording
from declip.errors import ConfigError
from declip.models import Declipper
from declip.training.module import DeclipModule


class TrainedModel(Protocol):
    """What adaptation needs of a trained model (:class:`declip.inference.LoadedModel` is one): the network,
    its rate, channels and hop, and its ``info``; a dataclass, so the adapted copy is ``replace(model, ...)``."""

    model: Declipper
    sample_rate: int
    channels: int
    hop: int
    info: dict


M = TypeVar("M", bound=TrainedModel)

# re-clipping alone, g up to 8: the only objective measured to improve held-out restorations (speech,
# music, SQAM); MC + EI, MC alone and their variants did not (docs/results.md)
DEFAULT_LOSSES = [
    {
        "class_path": "declip.losses.ReclipLoss",
        "init_args": {"g_min": 1.0, "g_max": 8.0, "distribution": "log-uniform"},
    },
]

# ``declip restore --adapt``: one recording adapts the model to itself. Anchoring clipped samples to the
# base model's restoration kept heavily clipped excerpts from losing their peaks: on SQAM (each excerpt
# adapted on itself, 100 steps) it gained at every input SDR where plain re-clipping lost from 1 to 7 dB;
# on a folder of another domain (speech) plain re-clipping gained more (docs/results.md).
PER_FILE_LOSSES = [
    {
        "class_path": "declip.losses.ReclipLoss",
        "init_args": {"g_min": 1.0, "g_max": 8.0, "distribution": "log-uniform", "anchor": 1.0},
    },
]


@dataclass
class AdaptSettings:
    """How to adapt; a YAML file with any of these keys is ``declip adapt --config``."""

    steps: int | None = 300
    minutes: float | None = None
    lr: float = 1e-4
    batch_size: int = 8
    segment_seconds: float = 0.3715
    losses: list[dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_LOSSES))
    num_workers: int = 0
    seed: int = 0

    @classmethod
    def per_file(cls, steps: int) -> AdaptSettings:
        """The settings of ``declip restore --adapt``: ``steps`` steps on the file itself, anchored re-clipping."""
        return cls(steps=steps, losses=copy.deepcopy(PER_FILE_LOSSES))

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> AdaptSettings:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: unreadable adaptation config ({error})") from error
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known) if isinstance(values, dict) else ["(not a mapping)"]
        if unknown:
            raise ConfigError(f"{path}: unknown adaptation setting(s) {unknown}; known: {sorted(known)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("minutes") is not None and "steps" not in values:
            values["steps"] = None  # a time budget replaces the default step count
        settings = cls(**values)
        try:
            settings.check_types()
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
        return settings

    def check_types(self) -> None:
        """One line naming the setting, the value given and what it takes, for a value of the wrong type."""
        for name, (kinds, expected) in _TYPES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ConfigError(f"adaptation setting {name}: got {value!r}, expected {expected}")

    def check(self) -> None:
        self.check_types()
        if (self.steps is None) == (self.minutes is None):
            raise ConfigError("give exactly one of steps and minutes")
        if (self.steps is not None and self.steps < 1) or (self.minutes is not None and self.minutes <= 0):
            raise ConfigError("steps must be at least 1 and minutes positive")
        if self.batch_size < 1 or self.segment_seconds <= 0 or self.lr <= 0:
            raise ConfigError("batch_size, segment_seconds and lr must be positive")


_TYPES = {  # each setting's accepted types, and how to name them in an error
    "steps": ((int, type(None)), "a whole number of steps (or null with minutes)"),
    "minutes": ((int, float, type(None)), "a number of minutes (or null with steps)"),
    "lr": ((int, float), "a number (float)"),
    "batch_size": (int, "a whole number (int)"),
    "segment_seconds": ((int, float), "a number of seconds (float)"),
    "losses": (list, "a list of {class_path, init_args} losses"),
    "num_workers": (int, "a whole number (int)"),
    "seed": (int, "a whole number (int)"),
}


@dataclass
class AdaptReport:
    steps: int
    seconds: float
    interrupted: bool
    files: list[str]
    audio_seconds: float
    clipped_files: int
    first_loss: float
    best_loss: float  # inf when stopped before warm-up ended: no adapted state was kept

    @property
    def adapted(self) -> bool:
        """Whether an adapted state was kept (False: the weights are the base model's, unchanged)."""
        return math.isfinite(self.best_loss)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class BestState(L.Callback):
    """Keep the weights at the lowest moving average of the training loss (the only label-free
    measure there is): adaptation ends, or is interrupted, with those."""

    def __init__(self, smoothing: float = 0.9, warmup: int = 10) -> None:
        self.smoothing, self.warmup = smoothing, warmup
        self.average: float | None = None
        self.first: float | None = None
        self.best = float("inf")
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_start(self, trainer, pl_module) -> None:  # interrupted before any better state: the start
        self.state = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = float(outputs["loss"] if isinstance(outputs, dict) else outputs)
        self.first = loss if self.first is None else self.first
        a = self.smoothing
        self.average = loss if self.average is None else a * self.average + (1 - a) * loss
        if trainer.global_step >= min(self.warmup, trainer.max_steps if trainer.max_steps > 0 else self.warmup):
            if self.average < self.best:
                self.best = self.average
                self.state = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}


def adapt(
    model: M,
    recordings: list[Recording],
    settings: AdaptSettings,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[M, AdaptReport]:
    """Fine-tune a copy of ``model`` on ``recordings`` with ``settings.losses`` (re-clipping by default);
    returns the adapted model (a copy of ``model`` holding the best state; its other fields as they were)
    and a report. Ctrl-C stops it keeping the best state."""
    settings.check()
    if model.sample_rate is None:
        raise ConfigError("only a trained network can be adapted (not a classical method)")
    losses = [instantiate(loss) for loss in settings.losses]
    if any(loss.requires_clean for loss in losses):
        raise ConfigError(
            "a supervised loss needs the clean signal, which clipped recordings do not have: adapt with "
            "declip.losses.MCLoss (and EILoss)"
        )
    device = next(model.model.parameters()).device
    anchored = [loss for loss in losses if getattr(loss, "needs_base", False)]  # ReclipLoss(anchor > 0)
    if anchored:  # a frozen copy of the model adaptation starts from, only when a loss anchors to it
        base = copy.deepcopy(model.model).eval().requires_grad_(False)
        for loss in anchored:
            loss.set_base(base)
    module = DeclipModule.from_model(model.model, losses, model.sample_rate, lr=settings.lr)
    length = max(round(settings.segment_seconds * model.sample_rate) // model.hop, 1) * model.hop
    items = settings.steps * settings.batch_size if settings.steps else 10_000_000
    dataset = ClippedRecordings(recordings, length, model.sample_rate, model.channels, items, settings.seed)
    loader = DataLoader(
        dataset, settings.batch_size, num_workers=settings.num_workers, persistent_workers=settings.num_workers > 0
    )
    best = BestState()
    quiet = logging.getLogger("lightning.pytorch")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
        max_steps=settings.steps or -1, max_epochs=-1 if settings.steps is None else None,
        max_time=timedelta(minutes=settings.minutes) if settings.minutes else None,
        logger=False, enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[best, *callbacks],
    )  # fmt: skip
    start = time.perf_counter()
    handler = signal.getsignal(signal.SIGINT)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*(validation_step|LeafSpec|does not have many workers).*")
            trainer.fit(module, train_dataloaders=loader)
    except SystemExit:  # Lightning's graceful Ctrl-C ends in sys.exit: keep what was learnt
        if not trainer.interrupted:
            raise
    finally:
        quiet.setLevel(level)
        if handler is not None:  # Lightning ignores SIGINT after the first Ctrl-C: give back the caller's
            signal.signal(signal.SIGINT, handler)
    seconds = time.perf_counter() - start
    if best.state is not None:
        module.model.load_state_dict(best.state)
    adapted = dataclasses.replace(model, model=module.model.to(device).eval(), info=dict(model.info))
    report = AdaptReport(
        steps=trainer.global_step,
        seconds=round(seconds, 1),
        interrupted=trainer.interrupted,
        files=[r.name for r in recordings],
        audio_seconds=round(sum(r.info.seconds for r in recordings), 2),
        clipped_files=sum(bool(r.clipped.any()) for r in recordings),
        first_loss=best.first if best.first is not None else float("nan"),
        best_loss=best.best,
    )
    return adapted, report
