"""The deep-unfolded consistent declipper: consistency, gradients, the A-SPADE start, bad settings."""

import math

import pytest
import torch

from declip.baselines.aspade import aspade
from declip.errors import ConfigError
from declip.losses import ReclipLoss
from declip.models import Declipper, UnfoldedSPADE
from declip.physics import Clipping, sdr, threshold_for_sdr
from declip.spade import hann


def sparse_signal(length: int, seed: int) -> torch.Tensor:
    """A few stable partials with random amplitudes and phases, ``(length,)``: sparse in frequency."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float64) / 16000
    freqs = torch.empty(6).uniform_(100, 3000, generator=g)
    amps = torch.empty(6).uniform_(0.1, 0.5, generator=g)
    phases = torch.empty(6).uniform_(0, 2 * math.pi, generator=g)
    return sum(a * torch.sin(2 * math.pi * f * t + p) for f, a, p in zip(freqs, amps, phases)).float()


def small(**kwargs) -> UnfoldedSPADE:
    return UnfoldedSPADE(**({"window": 512, "hop": 128, "iterations": 4, "k_step": 8, "bands": 4} | kwargs))


def test_output_is_consistent_reliable_samples_bit_exact():
    torch.manual_seed(0)
    model = Declipper(small(channels=2))
    x = torch.randn(2, 2, 3000) * 0.3
    physics = Clipping(torch.tensor([[[0.2], [0.3]], [[0.25], [0.15]]]), torch.tensor(-0.2))
    y = physics(x)
    out = model(y, physics)
    masks = physics.masks(y)
    assert torch.equal(out[masks.reliable], y[masks.reliable])
    assert bool((out[masks.high] >= y[masks.high]).all()) and bool((out[masks.low] <= y[masks.low]).all())
    assert float((out - y).abs().max()) > 0.01  # it did restore something


def test_unclipped_input_comes_back_unchanged():
    model = Declipper(small())
    y = torch.randn(1, 1, 2000) * 0.1
    assert torch.equal(model(y, Clipping(torch.tensor(10.0))), y)


def test_gradients_reach_every_iteration():
    torch.manual_seed(0)
    backbone = small(iterations=5)
    model = Declipper(backbone)
    x = sparse_signal(4096, 1)[None, None].repeat(2, 1, 1)
    physics = Clipping(threshold_for_sdr(x, 3.0)[:, None, None])
    ReclipLoss(g_min=1.0, g_max=4.0)(None, physics(x), physics, model).backward()
    per_iteration = backbone.offset.grad.abs().sum(1)
    assert per_iteration.shape == (5,) and bool((per_iteration > 0).all()), per_iteration
    assert bool((backbone.log_sharpness.grad.abs() > 0).all())


def test_gradients_reach_every_iteration_beside_the_heavy_path_and_the_probe():
    """With the share rule, the density test and the probe on, the frames left to the learned iterations (noise,
    lightly clipped at 10 dB: probed and not found sparse) still train every iteration."""
    torch.manual_seed(0)
    backbone = small(iterations=5, heavy_share=0.5, heavy_iterations=40, probe_iterations=20, probe_dense=0.9)
    x = (torch.randn(2, 1, 4096) * 0.3).clamp(-1, 1)
    physics = Clipping(threshold_for_sdr(x, 10.0)[:, None, None])
    ReclipLoss(g_min=1.0, g_max=2.0)(None, physics(x), physics, Declipper(backbone)).backward()
    assert bool((backbone.offset.grad.abs().sum(1) > 0).all()), backbone.offset.grad


def test_gradients_stay_finite_and_bounded_through_many_hard_iterations():
    """Steep gains (sharpness 50) over many iterations: the gradient must not grow with K. Through the
    threshold's dependence on the coefficients it grew geometrically (1e23 at K = 64 on music, inf at
    128); the gain's position is taken as fixed in the backward pass, its level and steepness still learn."""
    torch.manual_seed(0)
    x = (sparse_signal(8192, 5) + 0.05 * torch.randn(8192))[None, None].repeat(2, 1, 1)
    physics = Clipping(threshold_for_sdr(x[0], 3.0)[:, None, None])
    backbone = small(iterations=96, k_step=2, k_max=256, sharpness=50.0)
    ReclipLoss(g_min=1.0, g_max=4.0)(None, physics(x), physics, Declipper(backbone)).backward()
    for grad in (backbone.offset.grad, backbone.log_sharpness.grad):
        assert bool(torch.isfinite(grad).all()) and float(grad.abs().max()) < 1.0, float(grad.abs().max())
    assert bool((backbone.offset.grad.abs().sum(1) > 0).all())  # every iteration still gets a gradient


def test_equivariant_to_a_common_rescaling():
    torch.manual_seed(0)
    model = Declipper(small())
    x = torch.randn(1, 1, 2000) * 0.3
    physics = Clipping(threshold_for_sdr(x, 3.0)[:, None, None])
    y = physics(x)
    a = 0.01
    assert torch.allclose(model(a * y, Clipping(a * physics.high)), a * model(y, physics), rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("level", [3.0, 10.0])
def test_untrained_model_is_at_least_truncated_aspade(level):
    """Untrained, with steep gains, it is A-SPADE cut to the same iterations (schedule k = k_step (i+1)):
    on a sparse signal its ΔSDR is within 1 dB of the torch A-SPADE run for the same count, or above."""
    x = sparse_signal(16000, 7)
    theta = threshold_for_sdr(x[None], level)
    y = Clipping(theta)(x)
    kwargs = {"window": 1024, "hop": 256, "redundancy": 2}
    iterations, k_step = 12, 4
    model = Declipper(UnfoldedSPADE(iterations=iterations, k_step=k_step, sharpness=50.0, **kwargs))
    with torch.no_grad():
        ours = model(y[None, None], Clipping(theta))[0, 0]
    reference = aspade(y.double(), theta.double(), s=k_step, r=1, max_iterations=iterations, eps=0.0, **kwargs)
    gain_ours = float(sdr(x[None], ours[None])) - level
    gain_aspade = float(sdr(x[None], reference.float()[None])) - level
    assert gain_aspade > 1.0  # the reference really restores
    assert gain_ours >= gain_aspade - 1.0, (gain_ours, gain_aspade)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"window": 1000}, "window must be a power of two"),
        ({"iterations": 0}, "iterations"),
        ({"hop": 1024, "window": 512}, "hop must divide window"),
        ({"hop": 300}, "hop must divide window"),
        ({"k_step": 0}, "k_step"),
        ({"sharpness": 0.0}, "sharpness"),
        ({"k_step": 8, "k_max": 4}, "k_max must be at least k_step"),
        ({"eps": -0.1}, "eps must be at least 0"),
        ({"heavy_share": 0.0}, "heavy_share must be in"),
        ({"heavy_share": 1.5}, "heavy_share must be in"),
        ({"heavy_share": 0.5, "heavy_iterations": 0}, "heavy_iterations >= 1"),
        ({"heavy_share": 0.5, "heavy_rho": -0.1}, "heavy_rho >= 0"),
        ({"heavy_share": 0.5, "heavy_start": 0}, "heavy_start >= 1"),
        ({"probe_iterations": -1}, "probe_iterations in"),
        ({"probe_iterations": 20, "heavy_iterations": 10}, "probe_iterations in"),
        ({"probe_iterations": 10, "probe_dense": 1.5}, "probe_dense in"),
        ({"probe_iterations": 10, "probe_top": 0}, "probe_top >= 1"),
        ({"probe_iterations": 10, "probe_rho": 1.5}, "probe_rho in"),
    ],
)
def test_bad_settings_stop_with_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as error:
        small(**kwargs)
    assert "\n" not in str(error.value)


def test_eps_stops_converged_frames_as_aspade_does(monkeypatch):
    """With ``eps``, a frame within eps of its sparse estimate stops (A-SPADE's rule): on a sparse signal
    the restoration matches A-SPADE run with the same eps and iterations, with fewer frame transforms."""
    x = sparse_signal(16000, 7)
    theta = threshold_for_sdr(x[None], 10.0)
    y = Clipping(theta)(x)
    kwargs = {"window": 1024, "hop": 256, "redundancy": 2}
    rows = []
    irfft = torch.fft.irfft
    monkeypatch.setattr(torch.fft, "irfft", lambda t, *a, **k: rows.append(t.shape[0]) or irfft(t, *a, **k))

    def restore(eps):
        rows.clear()
        model = Declipper(UnfoldedSPADE(iterations=60, k_step=8, sharpness=50.0, eps=eps, **kwargs))
        with torch.no_grad():
            out = model(y[None, None], Clipping(theta))[0, 0]
        return out, sum(rows)

    full, work_full = restore(None)
    stopped, work_stopped = restore(0.1 / float(theta))  # A-SPADE's eps, in the model's threshold units
    monkeypatch.setattr(torch.fft, "irfft", irfft)
    reference = aspade(y.double(), theta.double(), s=8, r=1, max_iterations=60, eps=0.1, **kwargs).float()
    assert work_stopped < 0.8 * work_full, (work_stopped, work_full)  # converged frames stopped
    gains = [float(sdr(x[None], out[None])) - 10.0 for out in (stopped, reference, full)]
    assert gains[1] > 3.0 and abs(gains[0] - gains[1]) < 0.5, gains
    masks = Clipping(theta).masks(y)
    assert torch.equal(stopped[masks.reliable], y[masks.reliable])


def test_eps_without_bound_returns_the_input_and_keeps_gradients():
    """eps = inf: every frame is done at its first iterate, the input itself; a finite eps that stops some
    frames still passes gradients to every parameter of the iterations that ran."""
    x = sparse_signal(8192, 3)[None, None]
    physics = Clipping(threshold_for_sdr(x[0], 5.0)[:, None, None])
    y = physics(x)
    assert torch.equal(Declipper(small(eps=math.inf))(y, physics), y)
    backbone = small(iterations=3, eps=1e-3)
    ReclipLoss(g_min=1.0, g_max=4.0)(None, y.repeat(2, 1, 1), physics, Declipper(backbone)).backward()
    assert bool((backbone.offset.grad.abs().sum(1) > 0).all())


def test_geometric_schedule_runs_from_k_step_to_k_max():
    model = UnfoldedSPADE(window=256, hop=64, iterations=9, k_step=2, k_max=512)
    assert model.sparsities[0] == 2 and model.sparsities[-1] == 257  # k_max capped at the bins (256 + 1)
    assert model.sparsities == sorted(model.sparsities)
    ratios = [b / a for a, b in zip(model.sparsities[:5], model.sparsities[1:6])]
    assert all(abs(r - 2.0) < 1e-9 for r in ratios)  # (512 / 2) ** (1 / 8) = 2 each step
    assert UnfoldedSPADE(window=256, hop=64, iterations=3, k_step=4).sparsities == [4, 8, 12]  # linear


def test_restoration_context_covers_one_window():
    """Its output on reliable samples is exactly zero, so a gradient probe centred on one sees nothing:
    the context chunked restoration uses comes from the declared receptive field (one window)."""
    from declip.inference import LoadedModel

    loaded = LoadedModel.from_module_model(Declipper(small()), 16000, 1)
    assert loaded.context >= 512 and loaded.hop == 128


def test_export_and_load_round_trip(tmp_path):
    import lightning as L

    from declip.data import SyntheticDataModule
    from declip.training import DeclipModule
    from declip.zoo import load_model
    from declip.zoo.export import export_checkpoint

    module = DeclipModule(small(), [ReclipLoss(g_max=4.0)], lr=0.05, sample_rate=16000)
    trainer = L.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        limit_val_batches=0, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, SyntheticDataModule(length=1024, batch_size=2))
    assert bool((module.model.backbone.offset != 0).any())  # it trained
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(checkpoint)
    folder = export_checkpoint(checkpoint, tmp_path / "model")
    loaded = load_model(folder, precision="fp32")
    x = sparse_signal(3000, 3)[None, None]
    physics = Clipping(threshold_for_sdr(x, 5.0)[:, None, None])
    with torch.no_grad():
        assert torch.equal(loaded.model(physics(x), physics), module.model(physics(x), physics))


def test_heavy_path_takes_exactly_the_frames_clipped_at_least_heavy_share(monkeypatch):
    """The frames handed to the heavy path are those (with a clipped sample) whose clipped share reaches
    ``heavy_share``, counted independently from the mask; the others take the learned iterations."""
    x = sparse_signal(16000, 7)
    theta = threshold_for_sdr(x[None], 5.0)
    y = Clipping(theta)(x)
    window, hop = 1024, 256
    taken = {}
    for name in ("_settle", "_iterate"):
        original = getattr(UnfoldedSPADE, name)
        monkeypatch.setattr(
            UnfoldedSPADE,
            name,
            lambda self, f, lo, up, o=original, n=name: taken.setdefault(n, []).append(f) or o(self, f, lo, up),
        )
    share = 0.4
    model = Declipper(
        UnfoldedSPADE(window=window, hop=hop, iterations=3, k_step=4, heavy_share=share, heavy_iterations=5)
    )
    with torch.no_grad():
        model(y[None, None], Clipping(theta))
    clipped = torch.nn.functional.pad((y.abs() >= theta).float(), (window, window + (-len(y) % hop)))
    shares = clipped.unfold(0, window, hop).mean(1)
    heavy, light = int((shares >= share).sum()), int(((shares > 0) & (shares < share)).sum())
    assert heavy > 0 and light > 0  # the level mixes both kinds of frame
    assert sum(f.shape[0] for f in taken["_settle"]) == heavy
    assert sum(f.shape[0] for f in taken["_iterate"]) == light


def test_heavy_path_is_aspade_schedule():
    """Every clipped frame on the heavy path (``heavy_share`` tiny): at 1 dB input SDR the result is within 1 dB of
    the torch A-SPADE run (k = 1, 2, 2, 3, ...) for as many iterations, or above; the output stays consistent."""
    x = sparse_signal(16000, 7)
    kwargs = {"window": 1024, "hop": 256, "redundancy": 2}
    theta = threshold_for_sdr(x[None], 1.0)
    y = Clipping(theta)(x)
    backbone = UnfoldedSPADE(iterations=4, k_step=4, heavy_share=1e-6, heavy_iterations=200, heavy_rho=0.0, **kwargs)
    with torch.no_grad():
        ours = Declipper(backbone)(y[None, None], Clipping(theta))[0, 0]
    reference = aspade(y.double(), theta.double(), s=1, r=2, max_iterations=200, eps=0.0, **kwargs).float()
    gains = [float(sdr(x[None], out[None])) - 1.0 for out in (ours, reference)]
    assert gains[1] > 3.0 and gains[0] >= gains[1] - 1.0, gains
    masks = Clipping(theta).masks(y)
    assert torch.equal(ours[masks.reliable], y[masks.reliable])
    assert bool((ours[masks.high] >= y[masks.high]).all()) and bool((ours[masks.low] <= y[masks.low]).all())


def test_heavy_start_sets_the_first_sparsity():
    """The heavy path starts at ``heavy_start`` coefficients: from the whole spectrum (every bin kept) it gives the
    input back; for a few partials, ten iterations started near their count restore far more than ten from k = 1."""
    x = sparse_signal(4096, 3)
    physics = Clipping(threshold_for_sdr(x[None], 5.0))
    y = physics(x)[None, None]
    gains = {}
    for start in (1, 32, 2 * 512 // 2 + 1):
        with torch.no_grad():
            out = Declipper(small(heavy_share=1e-6, heavy_iterations=10, heavy_rho=0.0, heavy_start=start))(y, physics)
        gains[start] = float(sdr(x[None, None], out) - sdr(x[None, None], y))
    assert abs(gains[513]) < 1e-3 and gains[32] > gains[1] + 3.0, gains


def test_a_batch_of_heavy_frames_only_still_trains():
    """Every frame on the heavy path (no parameters): the loss backpropagates to zero gradients, no error."""
    x = sparse_signal(4096, 1)[None, None].repeat(2, 1, 1)
    physics = Clipping(threshold_for_sdr(x, 0.5)[:, None, None])
    backbone = small(heavy_share=0.01, heavy_iterations=5)
    ReclipLoss(g_min=1.0, g_max=2.0)(None, physics(x), physics, Declipper(backbone)).backward()
    assert backbone.offset.grad is not None and float(backbone.offset.grad.abs().sum()) == 0.0


def test_the_probe_sends_frames_that_settle_to_the_heavy_path_and_the_others_on():
    """A probe tolerance every frame meets (ρ = 1 holds at the first check) sends every clipped frame down the heavy
    path, exactly as a vanishing ``heavy_share`` does; one no frame meets (ρ = 0) leaves the model as without it;
    in between, a sparse signal's light frames settle and restore better than by the (untrained) iterations."""
    x = sparse_signal(16000, 7)
    physics = Clipping(threshold_for_sdr(x[None], 10.0))
    y = physics(x)[None, None]
    heavy = {"window": 1024, "hop": 256, "iterations": 8, "k_step": 4, "heavy_iterations": 200, "heavy_rho": 0.02}

    def restore(**kwargs):
        with torch.no_grad():
            return Declipper(UnfoldedSPADE(**(heavy | kwargs)))(y, physics)

    assert torch.equal(restore(heavy_share=0.5, probe_iterations=50, probe_rho=1.0), restore(heavy_share=1e-6))
    assert torch.equal(restore(heavy_share=0.5, probe_iterations=50, probe_rho=0.0), restore(heavy_share=0.5))
    assert torch.equal(restore(heavy_share=None, probe_iterations=50, probe_rho=1.0), restore(heavy_share=1e-6))
    gains = {
        rho: float(sdr(x[None, None], restore(heavy_share=0.5, probe_iterations=100, probe_rho=rho)) - 10.0)
        for rho in (0.0, 0.2)
    }
    assert gains[0.2] > gains[0.0] + 3.0, gains


def test_frames_dense_before_any_iteration_skip_the_probe():
    """The density test looks at the clipped input only: white noise is dense and a few partials are not; a share no
    frame exceeds probes every light frame, and one every frame exceeds probes none."""
    x = sparse_signal(16000, 7)
    physics = Clipping(threshold_for_sdr(x[None], 10.0))
    y = physics(x)[None, None]
    setup = {"window": 1024, "hop": 256, "iterations": 8, "k_step": 4, "heavy_iterations": 200, "heavy_rho": 0.02}
    probe = {"heavy_share": 0.5, "probe_iterations": 100, "probe_rho": 0.2}

    def restore(**kwargs):
        with torch.no_grad():
            return Declipper(UnfoldedSPADE(**(setup | kwargs)))(y, physics)

    assert torch.equal(restore(**probe, probe_dense=1.0), restore(**probe))
    assert torch.equal(restore(**probe, probe_dense=0.0, probe_top=1), restore(heavy_share=0.5))
    assert torch.equal(restore(**probe, probe_dense=0.4), restore(**probe))  # the partials' frames: all probed
    model = UnfoldedSPADE(**setup, **probe, probe_dense=0.4)
    g = torch.Generator().manual_seed(0)
    window = hann(1024).float()
    noise = torch.randn(8, 1024, generator=g) * window
    partials = x[: 8 * 1024].reshape(8, 1024) * window
    assert model._dense(noise).all() and not model._dense(partials).any()


def frames_of(y: torch.Tensor, threshold: float, window: int, hop: int):
    """Windowed frames of a clipped signal ``(time,)`` with their bounds, as the model frames it: the clipped ones."""
    g = hann(window).float()
    frames = y.unfold(0, window, hop) * g
    clipped = y.abs().unfold(0, window, hop) >= threshold
    high, low = clipped & (frames > 0), clipped & (frames < 0)
    keep = clipped.any(1)
    lower = torch.where(low, -math.inf, frames)[keep]
    upper = torch.where(high, math.inf, frames)[keep]
    return frames[keep], lower, upper


def test_frames_found_sparse_go_on_from_the_probe_as_the_heavy_path_from_its_start():
    """A frame the probe finds sparse part-way goes on from there: the same as the heavy path run on it alone."""
    x = sparse_signal(16000, 7)
    level = float(threshold_for_sdr(x[None], 10.0))
    frames, lower, upper = frames_of(x.clamp(-level, level), level, 1024, 256)
    model = UnfoldedSPADE(window=1024, hop=256, iterations=4, heavy_iterations=200, heavy_rho=0.02,
                          probe_iterations=60, probe_rho=0.2)  # fmt: skip
    none_heavy = torch.zeros(frames.shape[0], dtype=torch.bool)
    out, kept = model._probe_and_settle(frames, lower, upper, none_heavy)
    assert 0 < int(kept.sum()) < frames.shape[0], kept  # some found sparse, some not
    alone = model._settle(frames[kept], lower[kept], upper[kept])
    torch.testing.assert_close(out[kept], alone, rtol=0, atol=1e-6)
    everyone, kept_all = model._probe_and_settle(frames, lower, upper, ~none_heavy)  # heavy frames all go on
    assert bool(kept_all.all())
    torch.testing.assert_close(everyone, model._settle(frames, lower, upper), rtol=0, atol=1e-6)


def test_every_frame_on_the_heavy_path_with_the_density_test_on():
    x = sparse_signal(16000, 7)
    physics = Clipping(threshold_for_sdr(x[None], 3.0))
    y = physics(x)[None, None]
    setup = {"window": 1024, "hop": 256, "iterations": 4, "k_step": 4, "heavy_iterations": 100, "heavy_share": 1e-6}
    with torch.no_grad():
        probed = Declipper(UnfoldedSPADE(**setup, probe_iterations=20, probe_dense=0.4))(y, physics)
        assert torch.equal(probed, Declipper(UnfoldedSPADE(**setup))(y, physics))
