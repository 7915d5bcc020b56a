import pytest
import torch

from declip.data import SyntheticDataModule
from declip.errors import ConfigError


def test_validation_set_is_fixed_and_cycles_the_levels():
    dm = SyntheticDataModule(length=256, val_size=6, levels=(1.0, 10.0, 20.0), batch_size=6)
    a = next(iter(dm.val_dataloader()))
    b = next(iter(SyntheticDataModule(length=256, val_size=6, levels=(1.0, 10.0, 20.0), batch_size=6).val_dataloader()))
    assert torch.equal(a["y"], b["y"]) and torch.equal(a["x"], b["x"])
    assert torch.allclose(a["input_sdr"], torch.tensor([1.0, 10.0, 20.0] * 2), atol=0.01)
    assert torch.equal(a["y"], torch.clamp(a["x"], a["low"], a["high"]))


def test_training_examples_are_clipped_in_the_configured_range():
    dm = SyntheticDataModule(length=512, channels=2, input_sdr_range=(3.0, 6.0), batch_size=32)
    batch = next(iter(dm.train_dataloader()))
    assert batch["y"].shape == (32, 2, 512) and batch["high"].shape == (32, 1, 1)
    assert (batch["input_sdr"] > 2.99).all() and (batch["input_sdr"] < 6.01).all()


def test_amplitudes_span_orders_of_magnitude():
    dm = SyntheticDataModule(length=256, batch_size=256)
    peaks = next(iter(dm.train_dataloader()))["x"].abs().flatten(1).amax(1)
    assert peaks.max() / peaks.min() > 100


def test_absolute_threshold_range():
    dm = SyntheticDataModule(length=256, threshold_range=(0.5, 2.0), batch_size=64)
    batch = next(iter(dm.train_dataloader()))
    assert (batch["high"] >= 0.5).all() and (batch["high"] <= 2.0).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_sdr_range": (-1.0, 5.0)}, "input_sdr_range"),
        ({"input_sdr_range": (10.0, 5.0)}, "input_sdr_range"),
        ({"threshold_range": (-0.5, 0.5)}, "threshold_range"),
        ({"levels": (0.0, 5.0)}, "positive"),
    ],
)
def test_bad_clip_settings_fail_clearly(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SyntheticDataModule(**kwargs)
