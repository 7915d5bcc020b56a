import numpy as np
import pytest
import soundfile as sf
import torch

from declip.detection.plateaus import detect_clip_level, detect_clip_level_blocks
from declip.physics import Clipping, threshold_for_sdr
from tests.conftest import music


def _stereo(seconds=3.0, rate=44100):
    return torch.from_numpy(music(seconds, rate, 2, 7).T.copy())


@pytest.mark.parametrize("target", [1.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0])
def test_finds_the_threshold_of_synthetic_clipping_within_a_tenth_of_a_percent(target):
    x = _stereo()
    theta = threshold_for_sdr(x[:, None], target)[:, None]  # one level per channel
    level = detect_clip_level(Clipping(theta)(x))
    assert level.clipped_high.all() and level.clipped_low.all()
    assert torch.allclose(level.high, theta, rtol=1e-3)
    assert torch.allclose(level.low, -theta, rtol=1e-3)


def test_unclipped_audio_is_reported_unclipped():
    x = _stereo()
    level = detect_clip_level(x)
    assert not level.any
    assert (level.high[:, 0] > x.amax(1)).all() and (level.low[:, 0] < x.amin(1)).all()
    assert not Clipping(level.high, level.low).masks(x).clipped.any()


def test_per_channel_and_per_polarity_levels():
    x = _stereo()
    y = x.clone()
    y[0] = y[0].clamp(-0.2, 0.3)  # asymmetric on the left
    y[1] = y[1].clamp(max=0.25)  # only the top on the right
    level = detect_clip_level(y)
    assert level.clipped_high.tolist() == [True, True] and level.clipped_low.tolist() == [True, False]
    assert torch.allclose(level.high[:, 0], torch.tensor([0.3, 0.25]))
    assert level.low[0, 0] == pytest.approx(-0.2)


@pytest.mark.parametrize("subtype, lsb", [("PCM_16", 2**-15), ("PCM_24", 2**-23)])
def test_integer_files_with_real_plateaus(tmp_path, subtype, lsb):
    x = _stereo().T.numpy()
    x = 1.8 * x / np.abs(x).max(0)  # too loud for full scale: the file itself clips at 1.0
    path = tmp_path / f"hot_{subtype}.wav"
    sf.write(path, np.clip(x, -1, 1), 44100, subtype=subtype)
    y = torch.from_numpy(sf.read(path, dtype="float32")[0].T.copy())
    level = detect_clip_level(y)
    assert level.clipped_high.all() and level.clipped_low.all()
    # within one step of the format, or the detector's float tolerance (1e-5 of full scale)
    tolerance = max(lsb, 1e-5)
    assert (level.high - 1.0).abs().max() <= tolerance and (level.low + 1.0).abs().max() <= tolerance


def test_float_rounding_around_the_level_is_tolerated():
    x = _stereo()
    y = x.clamp(-0.4, 0.4)
    jitter = torch.randn_like(y) * 2e-7 * (y.abs() >= 0.4)  # a few float32 steps at 0.4
    level = detect_clip_level(y + jitter)
    assert level.clipped_high.all() and torch.allclose(level.high, torch.full((2, 1), 0.4), rtol=1e-3)
    found = Clipping(level.high, level.low).masks(y + jitter).clipped
    truly = y.abs() >= 0.4
    assert (found | ~truly).all()  # every clipped sample is found
    assert ((y.abs() - 0.4).abs()[found & ~truly] < 1e-5).all()  # extras lie within rounding of the level


def test_silence_and_a_single_sample():
    for y in (torch.zeros(1, 1000), torch.tensor([[0.5]])):
        level = detect_clip_level(y)
        assert not level.any and (level.high > 0).all() and (level.low < 0).all()


def test_a_pure_tone_touching_its_peak_once_per_period_is_not_clipped():
    t = torch.arange(48000) / 48000
    assert not detect_clip_level(torch.sin(2 * torch.pi * 1000 * t)[None]).any


def test_float64_input_keeps_its_precision():
    x = torch.from_numpy(music(1.0, 16000, 1, 2).T.copy()).double()
    level = detect_clip_level(x.clamp(-0.1, 0.1))
    assert level.high.dtype == torch.float64
    found = Clipping(level.high, level.low).masks(x.clamp(-0.1, 0.1)).clipped
    truly = x.abs() >= 0.1
    assert (found | ~truly).all() and (found & ~truly).sum() <= 3  # extras only within 1e-5 of the level


def _same(a, b) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("high", "low", "clipped_high", "clipped_low"))


@pytest.mark.parametrize("seed", range(40))
def test_any_split_into_blocks_gives_the_one_block_result(seed):
    """Blocks are read once and joined at their edges; blocks that peak inside the tolerance band but
    below the top (rounding ripple) are read again. Runs across edges, 1-sample blocks included."""
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 400, (1,), generator=gen))
    y = (torch.randn(2, n, generator=gen) * 0.5).clamp(-0.3, 0.3)
    ripple = float(torch.tensor([0.0, 3e-6, 2e-5])[seed % 3])  # none, inside the band, beyond it
    y = y + (y.abs() >= 0.3) * torch.randn(y.shape, generator=gen) * 0.3 * ripple
    cuts = torch.randperm(n - 1, generator=gen)[: seed % 7].add(1).sort().values.tolist()
    if seed % 5 == 0:
        cuts = sorted(set(cuts) | {1, n - 1})  # 1-sample blocks at both ends
    blocks = list(torch.tensor_split(y, cuts, dim=-1))
    assert _same(detect_clip_level_blocks(lambda: blocks), detect_clip_level(y))


def test_a_plateau_across_a_block_edge_counts_once():
    y = torch.zeros(1, 40)
    for start in (3, 12, 25):
        y[0, start : start + 3] = 0.5
    whole = detect_clip_level(y)
    assert whole.clipped_high.all()  # three plateaus
    split = detect_clip_level_blocks(lambda: list(torch.tensor_split(y, [4, 13, 14, 26], dim=-1)))
    assert _same(split, whole)
    y[0, 25:28] = 0.0  # two plateaus left: not clipped, however it is cut
    assert not detect_clip_level_blocks(lambda: list(torch.tensor_split(y, [4, 13, 14], dim=-1))).any


def test_exact_plateaus_are_read_once_and_ripple_reads_only_again():
    y = _stereo(2.0).clamp(-0.3, 0.3)
    reads = []

    def blocks(signal):
        def read():
            reads.append(1)
            return list(signal.split(4410, -1))

        return read

    assert detect_clip_level_blocks(blocks(y)).any and len(reads) == 1
    reads.clear()
    rippled = y + (y.abs() >= 0.3) * torch.randn_like(y) * 0.3 * 3e-6
    assert _same(detect_clip_level_blocks(blocks(rippled)), detect_clip_level(rippled)) and len(reads) == 2


def test_integer_peaks_are_taken_before_conversion_to_float():
    top = 2**24 + 1  # float32 rounds it down to 2**24, which would put 16777048 inside the band
    y = torch.tensor([[top, top, 0, top, top, 0, 16777048, 16777048]], dtype=torch.int32)
    assert not detect_clip_level(y).any  # two plateaus at the top, the third pair is below the band
    assert _same(detect_clip_level_blocks(lambda: [y[:, :3], y[:, 3:]]), detect_clip_level(y))


def test_a_nan_peak_does_not_depend_on_block_order():
    y = torch.tensor([[0.5, 0.5, 0.1, 0.5, 0.5, 0.2, 0.5, 0.5, float("nan")]])
    for blocks in ([y[:, :4], y[:, 4:]], [y[:, 8:], y[:, :8]]):
        assert detect_clip_level_blocks(lambda b=blocks: b).high.isnan().all()
