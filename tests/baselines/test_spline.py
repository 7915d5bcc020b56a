"""The cubic-spline baseline: exact on cubics, consistent, batched over runs (``declip restore --method spline``:
tests/cli/test_restore_cli.py)."""

import pytest
import torch

from declip.baselines import spline_fill
from declip.errors import ConfigError
from declip.physics import Clipping


def test_a_smooth_bump_is_bridged_closely():
    t = torch.linspace(0, 1, 400, dtype=torch.float64)
    x = torch.sin(2 * torch.pi * 2 * t)[None]  # four humps that the threshold flattens
    physics = Clipping(torch.tensor(0.8, dtype=torch.float64))
    y = physics(x)
    assert int(physics.masks(y).clipped.sum()) > 50
    out = spline_fill(y, physics)
    assert (out - x).abs().max() < 0.02 < (y - x).abs().max()


def test_output_is_consistent_and_rows_are_independent():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 2000).cumsum(-1) * 0.05
    physics = Clipping(torch.tensor(0.5), torch.tensor(-0.3))
    y = physics(x)
    out = spline_fill(y, physics)
    masks = physics.masks(y)
    assert torch.equal(out[masks.reliable], y[masks.reliable])
    assert bool((out[masks.high] >= 0.5).all()) and bool((out[masks.low] <= -0.3).all())
    one = spline_fill(y[1:2, 1:2], physics)
    assert torch.allclose(one, out[1:2, 1:2])
    assert (out - x).norm() < (y - x).norm()


def test_bad_settings_stop_with_one_line():
    with pytest.raises(ConfigError, match="neighbours >= 2"):
        spline_fill(torch.zeros(1, 10), Clipping(1.0), neighbours=1)
