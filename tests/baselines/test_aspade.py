import math

import pytest
import torch

from declip.baselines import ASPADE, aspade
from declip.physics import Clipping, sdr, threshold_for_sdr

FAST = dict(window=256, hop=64)  # behaviour, not the survey's 8192/2048


@pytest.fixture(autouse=True)
def _one_thread():
    """Hundreds of small FFTs per call: extra threads only add overhead (and crawl on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tones(length: int = 3000, channels: int = 1, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """A sum of five sinusoids per channel, ``(channels, length)``: sparse in the DFT, as A-SPADE assumes."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float64) / 16000
    rows = []
    for _ in range(channels):
        amp, freq, phase = torch.rand(3, 5, 1, generator=g, dtype=torch.float64)
        rows.append((amp * torch.sin(2 * math.pi * (100 + 1900 * freq) * t + 6 * phase)).sum(0))
    return torch.stack(rows).to(dtype)


def _clipped(x: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    theta = threshold_for_sdr(x[:, None], level)[:, None]
    return Clipping(theta)(x), theta


def _assert_consistent(out, y, high, low):
    m = Clipping(high, low).masks(y)
    high, low = (torch.as_tensor(t, dtype=y.dtype).expand_as(y) for t in (high, low))
    assert out.shape == y.shape and out.dtype == y.dtype
    assert torch.equal(out[m.reliable], y[m.reliable])
    assert bool((out[m.high] >= high[m.high]).all()) and bool((out[m.low] <= low[m.low]).all())


def test_output_is_consistent_and_keeps_reliable_samples_bit_exact():
    x = _tones(dtype=torch.float32)
    y, theta = _clipped(x, 5.0)
    out = aspade(y, theta, **FAST)
    _assert_consistent(out, y, theta, -theta)
    assert not torch.equal(out, y)


def test_improves_sdr_of_clipped_sinusoids():
    x = _tones()
    y, theta = _clipped(x, 3.0)
    out = aspade(y, theta, **FAST)
    gain = (sdr(x, out) - sdr(x, y)).item()
    assert gain > 15.0, gain  # about 24 dB


def test_asymmetric_thresholds():
    x = _tones() + 0.2
    high, low = 0.6 * x.max(), 0.5 * x.min()  # float64 tensors: exactly the levels y is clipped at
    y = Clipping(high, low)(x)
    out = aspade(y, high, low, **FAST)
    _assert_consistent(out, y, high, low)
    assert (sdr(x, out) - sdr(x, y)).item() > 10.0  # about 25 dB


def test_unclipped_input_comes_back_unchanged():
    x = _tones(dtype=torch.float32)
    out = aspade(x, 2 * x.abs().max().item(), **FAST)
    assert torch.equal(out, x)


@pytest.mark.parametrize("length", [1, 100, 255, 700])
def test_short_and_odd_lengths(length):
    x = _tones(length)[0]
    theta = 0.5 * x.abs().max().item()
    y = Clipping(theta)(x)
    out = aspade(y, theta, **FAST)
    _assert_consistent(out, y, theta, -theta)


def test_frames_batched_or_one_by_one_agree():
    x = _tones(800)
    y, theta = _clipped(x, 5.0)
    settings = dict(FAST, max_iterations=120)  # some frames stop early, some at the cap
    together = aspade(y, theta, **settings)
    assert torch.allclose(aspade(y, theta, batch_frames=1, **settings), together, rtol=0, atol=1e-10)
    assert torch.allclose(aspade(y, theta, batch_frames=3, **settings), together, rtol=0, atol=1e-10)


def test_channels_are_restored_independently_with_their_own_thresholds():
    x = _tones(channels=2)
    y, theta = _clipped(x, 5.0)  # theta (2, 1), one per channel
    out = aspade(y, theta[:, 0], **FAST)  # a (channels,) threshold is read per channel
    _assert_consistent(out, y, theta, -theta)
    for c in range(2):
        alone = aspade(y[c], theta[c], **FAST)
        assert torch.allclose(out[c], alone, rtol=0, atol=1e-10)


def test_restorer_object_takes_a_physics_and_batched_signals():
    x = _tones(1500, channels=2).reshape(2, 1, 1500)
    theta = threshold_for_sdr(x, 5.0)[:, None, None]
    physics = Clipping(theta)
    y = physics(x)
    out = ASPADE(**FAST)(y, physics)
    assert torch.equal(out, aspade(y, theta, **FAST))
    _assert_consistent(out, y, theta, -theta)


def test_rejects_bad_settings():
    y = torch.zeros(100)
    with pytest.raises(ValueError, match="hop"):
        aspade(y, 0.5, window=256, hop=256)


def _toolbox_aspade(y, high_mask, low_mask, w, a, red=2, s=1, r=2, eps=0.1):
    """The survey toolbox (spade_segmentation.m + aspade.m + hard_thresholding.m + proj_time.m) line by
    line in numpy, one frame at a time, on full DFT spectra; for symmetric clipping of a 1-D ``y``."""
    import numpy as np

    def threshold(c, k):  # hard_thresholding.m
        half = c[: len(c) // 2 + 1].copy()
        half[0] /= 2
        order = np.argsort(-np.abs(half), kind="stable")
        out = half.copy() if k >= len(half) else np.zeros_like(half)
        out[order[:k]] = half[order[:k]]
        out[0] *= 2
        return np.concatenate([out, np.conj(np.flip(out[1:] if len(c) % 2 else out[1:-1]))])

    ls = len(y)
    length = int(np.ceil(ls / a) * a + (np.ceil(w / a) - 1) * a)
    pad = np.zeros(length - ls)
    y, mh, ml = np.concatenate([y, pad]), np.concatenate([high_mask, pad > 0]), np.concatenate([low_mask, pad > 0])
    offsets = np.concatenate([np.arange(int(np.ceil(w / 2))), np.arange(-(w // 2), 0)])  # zero-phase order
    g = 0.5 + 0.5 * np.cos(2 * np.pi * offsets / w)
    periodised = np.zeros(a)
    np.add.at(periodised, offsets % a, g**2)
    g_syn = g / periodised[offsets % a]  # gabdual(g, a, w) * w
    analysis = lambda v: np.fft.fft(np.concatenate([v, np.zeros((red - 1) * w)])) / np.sqrt(red * w)  # noqa: E731
    out = np.zeros(length)
    for n in range(length // a):
        idx = np.mod(n * a + offsets, length)
        pos = offsets + w // 2
        block, h, lo = np.zeros(w), np.zeros(w, bool), np.zeros(w, bool)
        block[pos], h[pos], lo[pos] = y[idx] * g, mh[idx], ml[idx]
        x, k, count, best = block.copy(), s, 1, np.inf
        z, u = analysis(x), np.zeros(red * w, complex)
        while count <= int(np.ceil((red * w // 2 + 1) * r / s)):
            z_bar = threshold(z + u, k)
            objective = np.linalg.norm(z - z_bar)
            if objective <= best:
                rec, best = x, objective
            if objective <= eps:
                break
            syn = (np.fft.ifft(z_bar - u) * np.sqrt(red * w))[:w].real
            x = np.where(h, np.maximum(syn, block), np.where(lo, np.minimum(syn, block), np.where(h | lo, syn, block)))
            z = analysis(x)
            u, count = u + z - z_bar, count + 1
            k += s if count % r == 0 else 0
        out[idx] += rec[pos] * g_syn
    return out[:ls]


@pytest.mark.parametrize("window,hop,redundancy", [(128, 32, 2), (99, 30, 1)])
def test_matches_the_survey_toolbox_line_by_line(window, hop, redundancy):
    x = _tones(700)
    y, theta = _clipped(x, 5.0)
    m = Clipping(theta).masks(y)
    expected = _toolbox_aspade(y[0].numpy(), m.high[0].numpy(), m.low[0].numpy(), window, hop, redundancy)
    out = aspade(y, theta, window=window, hop=hop, redundancy=redundancy)
    assert torch.allclose(out[0], torch.from_numpy(expected), rtol=0, atol=1e-9)
