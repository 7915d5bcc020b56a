import pytest
import torch

from declip.errors import ConfigError
from declip.physics import Clipping, sdr, threshold_for_sdr


def _signals(batch: int = 4, length: int = 4096) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, 2, length, generator=g) * torch.logspace(-2, 1, batch)[:, None, None]


@pytest.mark.parametrize("target", [1.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0])
def test_threshold_search_hits_target_sdr(target):
    x = _signals()
    theta = threshold_for_sdr(x, target)
    y = Clipping(theta[:, None, None])(x)
    assert theta.shape == (4,)
    assert torch.allclose(sdr(x, y).double(), torch.full((4,), target, dtype=torch.float64), atol=0.01)


def test_threshold_search_is_batched_with_one_target_per_example():
    x = _signals()
    targets = torch.tensor([1.0, 5.0, 12.5, 20.0])
    y = Clipping(threshold_for_sdr(x, targets)[:, None, None])(x)
    assert (sdr(x, y) - targets).abs().max() < 0.01


def test_threshold_search_rejects_non_positive_targets_and_silence():
    with pytest.raises(ConfigError, match="positive"):
        threshold_for_sdr(_signals(), 0.0)
    with pytest.raises(ValueError, match="silent"):
        threshold_for_sdr(torch.zeros(1, 1, 100), 5.0)


def test_sdr_is_the_plain_definition():
    x = torch.tensor([[3.0, 4.0]])
    x_hat = torch.tensor([[3.0, 3.0]])
    assert sdr(x, x_hat).item() == pytest.approx(20 * torch.log10(torch.tensor(5.0)).item())
    mask = torch.tensor([[True, False]])
    assert torch.isinf(sdr(x, x_hat, mask)).all()
    assert torch.isnan(sdr(x, x_hat, torch.zeros_like(mask))).all()


def test_asymmetric_clipping_and_masks():
    x = torch.tensor([[[-2.0, -0.5, 0.0, 0.3, 0.9, 3.0]]])
    physics = Clipping(high=0.8, low=-0.4)
    y = physics(x)
    assert torch.equal(y, torch.tensor([[[-0.4, -0.4, 0.0, 0.3, 0.8, 0.8]]]))
    m = physics.masks(y)
    assert m.high.tolist() == [[[False, False, False, False, True, True]]]
    assert m.low.tolist() == [[[True, True, False, False, False, False]]]
    assert (m.reliable ^ m.clipped).all()
    assert m.signed.tolist() == [[[-1.0, -1.0, 0.0, 0.0, 1.0, 1.0]]]
    assert physics.scale.item() == pytest.approx(0.6)


def test_projection_is_idempotent_and_keeps_reliable_samples_bit_exact():
    x = _signals()
    theta = threshold_for_sdr(x, 5.0)[:, None, None]
    physics = Clipping(theta)
    y = physics(x)
    estimate = y + torch.randn_like(y)
    p = physics.project(estimate, y)
    m = physics.masks(y)
    assert torch.equal(p[m.reliable], y[m.reliable])
    assert (p[m.high] >= theta.expand_as(p)[m.high]).all()
    assert (p[m.low] <= -theta.expand_as(p)[m.low]).all()
    assert torch.equal(physics.project(p, y), p)
    assert torch.equal(physics(p), y)  # a projected estimate explains the measurement


def test_thresholds_must_have_the_right_sign():
    with pytest.raises(ConfigError, match="positive"):
        Clipping(-0.5)
    with pytest.raises(ConfigError, match="negative"):
        Clipping(0.5, low=0.1)
