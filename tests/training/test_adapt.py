"""Self-supervised adaptation as a library: ``adapt`` and ``AdaptSettings`` (``declip adapt`` and
``declip restore --adapt``: tests/cli/test_adapt_cli.py)."""

import math
from pathlib import Path

import pytest
import torch

from declip.data.recordings import scan_recordings
from declip.errors import ConfigError
from declip.losses import ReclipLoss
from declip.training.adapt import AdaptSettings, adapt
from declip.zoo import load_model
from tests.conftest import clipped_folder

ROOT = Path(__file__).resolve().parents[2]


def test_interrupted_adaptation_keeps_the_best_state(base, tmp_path):
    import lightning as L

    class CtrlC(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 15:
                raise KeyboardInterrupt

    torch.manual_seed(0)  # the losses draw their gains from the global generator: the same run in any test order
    recordings, _ = scan_recordings([clipped_folder(tmp_path / "r")])
    model = load_model(base, precision="fp32")
    settings = AdaptSettings(steps=1000, lr=1e-3)  # a rate for an untrained toy model
    adapted, report = adapt(model, recordings, settings, progress=False, callbacks=[CtrlC()])
    assert report.interrupted and report.steps == 15
    # a state after warm-up was kept (the first batch's loss is one noisy draw: no order with the best average)
    assert report.adapted and math.isfinite(report.best_loss)
    assert any(
        not torch.equal(a, b) for a, b in zip(model.model.state_dict().values(), adapted.model.state_dict().values())
    )


def test_the_example_config_holds_the_defaults():
    assert AdaptSettings.from_yaml(ROOT / "configs/adapt.yaml") == AdaptSettings()


def test_a_time_budget_in_the_config_replaces_the_default_steps(tmp_path):
    path = tmp_path / "minutes.yaml"
    path.write_text("minutes: 2\n")
    settings = AdaptSettings.from_yaml(path)
    assert settings.minutes == 2 and settings.steps is None
    settings.check()


def test_a_time_budget_stops_adaptation(base, tmp_path):
    recordings, _ = scan_recordings([clipped_folder(tmp_path / "r", files=1)])
    model = load_model(base, precision="fp32")
    _, report = adapt(model, recordings, AdaptSettings(steps=None, minutes=0.05), progress=False)
    assert report.steps > 0 and not report.interrupted
    assert report.seconds < 120  # three seconds of budget (without it, 10 million items would run for hours)


def test_adapt_hands_an_anchored_loss_a_frozen_copy_of_the_base_model(base, tmp_path, monkeypatch):
    """``ReclipLoss(anchor > 0)`` is pulled toward the model adaptation started from: ``adapt`` gives it a
    frozen copy of that model, apart from the weights being trained, and the anchor term is in the loss."""
    folder = clipped_folder(tmp_path / "takes", level=0.2)
    recordings, _ = scan_recordings([folder])
    model = load_model(base)
    given, values = [], []
    set_base, forward = ReclipLoss.set_base, ReclipLoss.forward
    monkeypatch.setattr(ReclipLoss, "set_base", lambda self, m: (given.append(m), set_base(self, m))[1])
    monkeypatch.setattr(
        ReclipLoss, "forward", lambda self, *a, **k: (values.append(self.anchor), forward(self, *a, **k))[1]
    )
    losses = [{"class_path": "declip.losses.ReclipLoss", "init_args": {"g_max": 8.0, "anchor": 1.0}}]
    adapted, _ = adapt(model, recordings, AdaptSettings(steps=5, lr=1e-3, losses=losses), progress=False)
    (frozen,) = given
    assert frozen is not model.model and frozen is not adapted.model and not frozen.training
    assert not any(p.requires_grad for p in frozen.parameters())
    assert all(torch.equal(a, b) for a, b in zip(frozen.state_dict().values(), model.model.state_dict().values()))
    assert values and set(values) == {1.0}
    changed = any(
        not torch.equal(a, b) for a, b in zip(adapted.model.state_dict().values(), frozen.state_dict().values())
    )
    assert changed and all(p.requires_grad for p in model.model.parameters())  # the caller's model is untouched


def test_settings_need_exactly_one_of_steps_and_minutes():
    with pytest.raises(ConfigError, match="exactly one of steps and minutes"):
        AdaptSettings(steps=None).check()
