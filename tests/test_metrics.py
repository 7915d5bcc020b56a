import math

import pytest
import torch

from declip.metrics import DeclippingMetrics, declipping_scores
from declip.physics import Clipping, threshold_for_sdr


def _batch(levels):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(levels), 1, 2000, generator=g)
    physics = Clipping(threshold_for_sdr(x, torch.tensor(levels))[:, None, None])
    return x, physics(x), physics


def test_scores_of_the_clipped_input_and_of_a_better_estimate():
    x, y, physics = _batch([3.0, 10.0])
    clipped = physics.masks(y).clipped
    same = declipping_scores(y, x, y, clipped)
    assert torch.allclose(same["sdr"], torch.tensor([3.0, 10.0]), atol=0.01)
    assert torch.equal(same["delta_sdr"], torch.zeros(2))
    halfway = (x + y) / 2  # error halved everywhere: +6.02 dB, overall and on clipped samples
    better = declipping_scores(halfway, x, y, clipped)
    assert torch.allclose(better["delta_sdr"], torch.full((2,), 20 * math.log10(2)), atol=1e-3)
    assert torch.allclose(better["delta_sdr_clipped"], torch.full((2,), 20 * math.log10(2)), atol=1e-3)


def test_metric_buckets_by_nearest_level_and_skips_undefined_values():
    metric = DeclippingMetrics(levels=(1, 5, 20))
    x, y, physics = _batch([1.0, 5.0, 5.0, 19.0])
    halfway = (x + y) / 2
    metric.update(halfway, x, y, physics.masks(y).clipped, torch.tensor([1.0, 5.0, 5.0, 19.0]))
    # an example with nothing clipped: its clipped-only score is NaN and stays out of the means
    metric.update(x[:1], x[:1], x[:1], torch.zeros_like(x[:1], dtype=torch.bool), torch.tensor([20.0]))
    out = metric.compute()
    assert out["sdr@1dB"] == pytest.approx(1.0 + 6.02, abs=0.02)
    assert out["sdr@5dB"] == pytest.approx(5.0 + 6.02, abs=0.02)
    assert out["delta_sdr_clipped"] == pytest.approx(6.02, abs=0.01)
    assert out["delta_sdr_clipped@20dB"] == pytest.approx(6.02, abs=0.01)
    assert set(out) >= {"sdr", "delta_sdr", "delta_sdr_clipped", "si_sdr", "si_sdr@5dB"}
