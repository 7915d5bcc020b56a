import pytest
import torch

from declip.errors import ConfigError
from declip.losses import EILoss, MCLoss, NaiveMCLoss, ReclipLoss, SupervisedLoss
from declip.physics import Clipping, threshold_for_sdr


@pytest.fixture
def clipped():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 256, generator=g)
    physics = Clipping(threshold_for_sdr(x, 5.0)[:, None, None])
    return x, physics(x), physics


def oracle(x):
    """A model that returns the clean signal whatever it is given."""
    return lambda y, physics: x


def spying():
    """A model that returns its input and records every (input, physics) it is given."""
    seen = []

    def spy(y_in, p):
        seen.append((y_in, p))
        return y_in

    return seen, spy


def identity(y, physics):
    return y


@pytest.mark.parametrize("metric", ["mse", "l1", "sdr"])
def test_supervised_loss_is_minimal_at_the_ground_truth(clipped, metric):
    x, y, physics = clipped
    loss = SupervisedLoss(metric)
    at_truth = loss(x, y, physics, oracle(x), x)
    elsewhere = loss(y, y, physics, oracle(x), x)
    if metric == "sdr":
        assert at_truth < -90 and elsewhere > at_truth
    else:
        assert at_truth == 0 and elsewhere > 0


def test_supervised_loss_without_clean_target_says_what_to_use(clipped):
    x, y, physics = clipped
    with pytest.raises(ConfigError, match="MCLoss"):
        SupervisedLoss()(x, y, physics, identity, None)
    with pytest.raises(ConfigError, match="metric"):
        SupervisedLoss("snr")


def ideal(x, gains=(1.0, 2.0, -2.0)):
    """The ideal declipper for multiples of ``x``: recovers ``g*x`` from ``clip(g*x)``."""

    def model(y_in, physics):
        out = torch.full_like(x, torch.nan)
        for g in gains:
            match = (physics(g * x) == y_in).flatten(1).all(1)
            out[match] = g * x[match]
        assert not out.isnan().any(), "input is not a clipped multiple of x"
        return out

    return model


@pytest.mark.parametrize(
    "loss", [MCLoss(), NaiveMCLoss(), EILoss(g_min=2.0, g_max=2.0), EILoss(g_min=2.0, g_max=2.0, sign_flip=True)]
)
def test_self_supervised_losses_are_zero_at_the_ground_truth(clipped, loss):
    x, y, physics = clipped
    assert loss(x, y, physics, ideal(x), None).item() == 0.0


def test_mc_is_zero_for_any_consistent_estimate(clipped):
    x, y, physics = clipped
    for _ in range(5):
        estimate = physics.project(y + 3 * torch.randn_like(y), y)
        assert MCLoss()(estimate, y, physics, identity).item() == 0.0
    assert MCLoss()(y - 0.5 * physics.masks(y).signed, y, physics, identity) > 0


def test_mc_gives_gradient_where_naive_mc_gives_none(clipped):
    x, y, physics = clipped
    m = physics.masks(y)
    # an estimate that overshoots on reliable samples, beyond the thresholds: the clamp is flat there
    estimate = torch.where(m.reliable, 10 * physics.high.expand_as(y), y).requires_grad_()
    NaiveMCLoss()(estimate, y, physics, identity).backward()
    naive_grad = estimate.grad.clone()
    estimate.grad = None
    MCLoss()(estimate, y, physics, identity).backward()
    overshoot = m.reliable
    assert naive_grad[overshoot].abs().max() == 0
    assert (estimate.grad[overshoot].abs() > 0).all()


def test_ei_reclips_at_the_same_threshold(clipped):
    x, y, physics = clipped
    seen, spy = spying()
    loss = EILoss(g_min=2.0, g_max=2.0)
    value = loss(x, y, physics, spy)
    ((y_in, p),) = seen
    assert p is physics
    assert torch.equal(y_in, physics(2.0 * x))
    expected = (((2.0 * x - y_in) / physics.scale) ** 2).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


def test_ei_weight_and_detach(clipped):
    x, y, physics = clipped
    w = torch.tensor(1.5, requires_grad=True)

    def scaled(y_in, p):
        return w * y_in

    x_net = x.clone().requires_grad_()
    EILoss(g_min=2.0, g_max=2.0, detach_target=True)(x_net, y, physics, scaled).backward()
    assert x_net.grad is None and w.grad.abs() > 0  # gradient through the second pass only
    x_net = x.clone().requires_grad_()
    EILoss(g_min=2.0, g_max=2.0, detach_target=False)(x_net, y, physics, scaled).backward()
    assert x_net.grad.abs().sum() > 0
    base = EILoss(g_min=2.0, g_max=2.0)(x, y, physics, identity)
    assert EILoss(weight=0.25, g_min=2.0, g_max=2.0)(x, y, physics, identity) == pytest.approx(0.25 * base.item())


def test_losses_are_invariant_to_a_common_rescaling(clipped):
    x, y, physics = clipped
    estimate = y + torch.randn_like(y)
    scaled = Clipping(7 * physics.high)
    for loss in [MCLoss(), NaiveMCLoss()]:
        a = loss(estimate, y, physics, identity)
        b = loss(7 * estimate, 7 * y, scaled, identity)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_clipped_only_ei_ignores_reliable_samples_and_scores_clipped_ones():
    torch.manual_seed(0)
    y = (torch.randn(4, 1, 256) * 0.5).clamp(-0.4, 0.4)
    physics = Clipping(torch.tensor(0.4))
    x_net = y * 1.5  # clipped samples beyond the level, reliable ones away from y
    target = physics.project(x_net, y)  # with g = 1 the second pass must give back P(x_net)

    def wrong_on_reliable(y2, phys):  # exact on clipped samples, off by 1 on the others
        return torch.where(phys.masks(y2).clipped, target, y2 + 1.0)

    clipped_only = EILoss(weight=1.0, g_min=1.0, g_max=1.0, clipped_only=True)
    assert float(clipped_only(x_net, y, physics, wrong_on_reliable)) == 0.0
    plain = EILoss(weight=1.0, g_min=1.0, g_max=1.0)
    assert float(plain(x_net, y, physics, wrong_on_reliable)) > 0.5  # the plain loss counts them


def test_clipped_only_ei_gives_a_gradient_below_the_threshold():
    y = torch.tensor([[[0.1, 0.4, 0.4, 0.4, -0.2]]])
    physics = Clipping(torch.tensor(0.4))
    z = torch.zeros(1, 1, 5, requires_grad=True)

    def model(y2, phys):  # an estimate stuck at the clipped value on clipped samples
        return y2 + z

    loss = EILoss(weight=1.0, g_min=1.0, g_max=1.0, clipped_only=True)
    x_net = torch.tensor([[[0.1, 0.5, 0.7, 0.5, -0.2]]])
    loss(x_net, y, physics, model).backward()
    assert z.grad[0, 0, 1:4].lt(0).all() and z.grad[0, 0, [0, 4]].eq(0).all()  # lifts clipped samples only


def test_reclip_clips_the_measurement_harder_and_scores_against_it(clipped):
    x, y, physics = clipped
    seen, spy = spying()
    value = ReclipLoss(g_min=2.0, g_max=2.0)(x, y, physics, spy)
    ((y_in, p),) = seen
    assert torch.equal(p.high, physics.high / 2) and torch.equal(p.low, physics.low / 2)
    assert torch.equal(y_in, torch.clamp(y, -physics.high / 2, physics.high / 2))
    # the identity on the harder clipping misses every sample beyond theta/2 by |y| - theta/2:
    # reliable ones in y must equal y, clipped ones must reach theta (both a distance theta/2 here)
    assert ((y.abs() > physics.high / 2) & (y.abs() < physics.high)).any()
    expected = (((y_in - y) / physics.scale) ** 2).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


def test_reclip_is_zero_for_a_model_that_gives_back_the_measurement_where_it_is_reliable(clipped):
    x, y, physics = clipped
    assert ReclipLoss()(x, y, physics, oracle(x)).item() == 0.0  # the truth explains y
    assert ReclipLoss()(x, y, physics, oracle(y)).item() == 0.0  # so does y itself


def test_reclip_refuses_gains_below_one():
    with pytest.raises(ConfigError, match="g_min must be at least 1"):
        ReclipLoss(g_min=0.5)


def test_reclip_anchor_pulls_clipped_samples_toward_the_base_model(clipped):
    x, y, physics = clipped
    mask = physics.masks(y).clipped
    loss = ReclipLoss(anchor=1.0)
    loss.set_base(oracle(x))  # a base model that restores y perfectly
    assert loss(x, y, physics, oracle(x)).item() == 0.0  # agrees with the base and with y
    # y itself is consistent with y (zero plain re-clipping loss) but misses the base's peaks:
    expected = ((torch.where(mask, y - x, torch.zeros_like(y)) / physics.scale) ** 2).mean()
    assert loss(x, y, physics, oracle(y)).item() == pytest.approx(expected.item(), rel=1e-6) and expected > 0
    assert ReclipLoss()(x, y, physics, oracle(y)).item() == 0.0


def test_reclip_anchor_needs_a_base_model_and_keeps_it_out_of_the_state(clipped):
    x, y, physics = clipped
    with pytest.raises(ConfigError, match="needs a base model to anchor to"):
        ReclipLoss(anchor=1.0)(x, y, physics, oracle(x))
    with pytest.raises(ConfigError, match="anchor must be >= 0"):
        ReclipLoss(anchor=-1.0)
    loss = ReclipLoss(anchor=1.0)
    loss.set_base(torch.nn.Linear(2, 2))
    assert not list(loss.parameters()) and not loss.state_dict()


@pytest.mark.parametrize("codec", ["mp3", "opus"])
def test_reclip_on_a_coded_measurement_gives_gradients(codec):
    """Clip, then code: re-clipping under the band's edge trains the network on a real codec's output."""
    from declip.data.coded_segments import CodedClipping
    from declip.models import Declipper, UNet

    g = torch.Generator().manual_seed(2)
    t = torch.arange(8192) / 16000
    x = (0.4 * torch.sin(2 * torch.pi * 440 * t) + 0.2 * torch.sin(2 * torch.pi * 1250 * t))[None]
    theta = threshold_for_sdr(x[None], 5.0).reshape(1, 1)
    item = {"y": x.clamp(-theta, theta), "high": theta, "low": -theta}
    item = CodedClipping({codec: 128 if codec == "mp3" else 96}, margin=1024).apply(item, 16000, g)
    y, physics = item["y"][None], Clipping(item["high"][None], item["low"][None])
    assert physics.masks(y).clipped.any() and physics.masks(y).reliable.any()
    model = Declipper(UNet(channels=1, widths=[4, 8]))
    loss = ReclipLoss(g_max=8.0)(None, y, physics, model)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_reclip_guard_drops_targets_next_to_clipped_samples():
    y = torch.tensor([[[0.1, 0.2, 0.5, 0.2, 0.1, 0.0, -0.1, 0.0]]])
    physics = Clipping(torch.tensor(0.5))
    zeros = lambda y_in, p: torch.zeros_like(y_in)  # noqa: E731
    plain = ReclipLoss(g_min=2.0, g_max=2.0)(None, y, physics, zeros)
    guarded = ReclipLoss(g_min=2.0, g_max=2.0, guard=1)(None, y, physics, zeros)
    # scale 0.5; clipped sample 2 misses the threshold by 0.5; guard 1 drops samples 1 and 3 (0.2 each)
    assert torch.isclose(plain, torch.tensor((1.0 + 2 * 0.16 + 2 * 0.04 + 0.04) / 8))
    assert torch.isclose(guarded, torch.tensor((1.0 + 2 * 0.04 + 0.04) / 8))
    with pytest.raises(ConfigError, match="guard"):
        ReclipLoss(guard=-1)


def test_relative_reclip_weighs_every_example_alike(clipped):
    """relative: each example's error over what the harder clipping removed from it; a model giving its input
    back scores exactly 1 whatever the example's level or how hard it was re-clipped, a perfect one 0."""
    x, y, physics = clipped
    y = y * torch.tensor([1.0, 30.0, 0.01])[:, None, None]  # very different amplitudes, one level each
    physics = Clipping(physics.high * torch.tensor([1.0, 30.0, 0.01])[:, None, None])
    for g in (1.5, 8.0):
        loss = ReclipLoss(g_min=g, g_max=g, relative=True)
        assert torch.isclose(loss(None, y, physics, identity), torch.tensor(1.0))
        assert loss(None, y, physics, oracle(y)).item() == 0.0
    # halfway back on every re-clipped sample: a quarter of the removed energy is left, at every amplitude
    half = lambda y_in, p: y_in + 0.5 * (torch.where(p.masks(y_in).clipped, y, y_in) - y_in)  # noqa: E731
    assert torch.isclose(ReclipLoss(g_min=8.0, g_max=8.0, relative=True)(None, y, physics, half), torch.tensor(0.25))
    # the ratios are averaged per example: perfect on the first example, nothing restored on the other two
    first_only = lambda y_in, p: torch.cat([y[:1], y_in[1:]])  # noqa: E731
    assert torch.isclose(
        ReclipLoss(g_min=4.0, g_max=4.0, relative=True)(None, y, physics, first_only), torch.tensor(2 / 3)
    )
    # with a guard, giving the input back still scores 1 (the guarded samples count in neither term)
    guarded = ReclipLoss(g_min=4.0, g_max=4.0, guard=2, relative=True)
    assert torch.isclose(guarded(None, y, physics, identity), torch.tensor(1.0))
    unclipped = torch.full((1, 1, 8), 0.1)
    zero = ReclipLoss(g_min=1.0, g_max=1.0, relative=True)(None, unclipped, Clipping(torch.tensor(0.5)), identity)
    assert zero.item() == 0.0  # nothing removed: nothing to score
    with pytest.raises(ConfigError, match="anchor"):
        ReclipLoss(anchor=1.0, relative=True)
