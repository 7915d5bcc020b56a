import numpy as np
import pytest
import soundfile as sf
import torch

from declip.data.codecs import code
from declip.detection.baseline import estimate_baseline
from declip.detection.coded import CodedClipLevel, PolarityEstimate
from declip.detection.measurement import coded_measurement, polarities_agree
from declip.inference.analysis import analyze_array, measure_array
from declip.inference.restore import restore_array, restore_file
from declip.zoo import load_model
from tests.detection.signals import RATE, clipped_at, rich_music, tensor


def plateaus_on_a_drift() -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(4 * RATE) / RATE
    drift = 0.1 * np.sin(2 * np.pi * 2 * t)  # a 2-Hz baseline under plateaus at +-0.5
    return np.clip(np.sin(2 * np.pi * 440 * t), -0.5, 0.5) + drift, drift


def test_the_baseline_is_the_plateaus_midline_where_both_polarities_clip():
    clipped, drift = plateaus_on_a_drift()
    estimate = estimate_baseline([torch.from_numpy(clipped[None])], RATE).at(0, len(clipped))[0].numpy()
    middle = slice(RATE // 2, -RATE // 2)  # away from the ends, where the one-FFT low-pass wraps around
    assert np.abs(estimate[middle] - drift[middle]).max() < 0.01


def test_the_baseline_from_blocks_equals_the_baseline_at_once():
    clipped, _ = plateaus_on_a_drift()
    y = torch.from_numpy(clipped[None])
    whole = estimate_baseline([y], RATE)
    blocks = estimate_baseline(y.split(3001, -1), RATE)  # blocks cut across the windows
    np.testing.assert_array_equal(blocks.points, whole.points)
    pieces = torch.cat(list(whole.removed_blocks(y.split(777, -1))), -1)
    assert torch.equal(pieces, whole.removed(y))
    piece = y[:, 100:900].float()  # back on the baseline to float32 rounding (the restoration keeps reliable samples)
    torch.testing.assert_close(whole.put_back(whole.removed(piece, 100), 100), piece, rtol=0, atol=1e-7)


def test_a_bad_window_or_no_samples_stops_with_one_line():
    with pytest.raises(ValueError, match="at least 4 samples; got 2"):
        estimate_baseline([torch.zeros(1, 100)], RATE, window=2)
    with pytest.raises(ValueError, match="no samples"):
        estimate_baseline([], RATE)
    with pytest.raises(ValueError, match="no samples"):
        estimate_baseline([torch.zeros(2, 0)], RATE)


@pytest.fixture(scope="module")
def coded_on_a_drift() -> torch.Tensor:
    """Music on a 1-Hz drift of 0.2, clipped at 10 dB input SDR, then Opus-coded (which removes the drift):
    the plateaus then move with the drift, and the coded estimate on the input as it is finds nothing."""
    x = rich_music(6.0, 1, 5)
    t = np.arange(len(x)) / RATE
    clipped, _ = clipped_at((x[:, 0] + 0.2 * np.sin(2 * np.pi * t))[:, None].astype(np.float32), 10)
    return tensor(code(clipped, RATE, "opus", 96))


def test_detection_takes_the_baseline_out_where_the_input_as_it_is_shows_nothing(coded_on_a_drift):
    y = coded_on_a_drift
    assert coded_measurement(lambda: [y], 1).kinds == ("none",)
    measurement = measure_array(y, RATE)
    assert measurement.kinds == ("hard-coded",) and measurement.baseline is not None
    analysis = analyze_array(y, RATE, "drift.opus")
    assert analysis.channels[0].kind == "hard-coded" and analysis.as_dict()["moving_baseline"] is True
    assert (
        analysis.lines()[0] == "drift.opus: 6.0 s at 44100 Hz; levels on a moving baseline, taken out before measuring"
    )


def test_a_piece_of_the_file_sees_the_levels_as_the_whole_file_does(coded_on_a_drift):
    y = coded_on_a_drift
    measurement = measure_array(y, RATE)
    whole = measurement.level_view(y)
    for first, last in ((0, 1000), (44100, 90000), (y.shape[-1] - 5000, y.shape[-1])):
        assert torch.equal(measurement.level_view(y[:, first:last], first), whole[:, first:last])
    shifted = measurement.level_view(y[:, 44100:90000], 44101)  # one sample off is not the same
    assert not torch.equal(shifted, whole[:, 44100:90000])


def test_the_web_summary_over_blocks_counts_what_one_pass_counts(coded_on_a_drift, tmp_path, monkeypatch):
    from declip.app import clipping

    y = coded_on_a_drift
    sf.write(tmp_path / "in.wav", y.T.numpy(), RATE, subtype="FLOAT")
    monkeypatch.setattr(clipping, "BLOCK_FRAMES", 40000)  # seven blocks, cut anywhere
    summary = clipping.summarise_clipping(tmp_path / "in.wav")
    analysis = analyze_array(y, RATE)
    assert summary.kind == ["hard-coded"] and summary.measurement.baseline is not None
    # the same samples: one sample more or less would move the share by 1 / 264600 = 3.8e-6 (analysis: float32)
    assert summary.share == pytest.approx([analysis.channels[0].clipped_share], abs=1e-6)
    assert summary.share[0] > 0


def test_clean_music_on_a_drift_is_not_flagged_after_opus():
    x = rich_music(6.0, 1, 5)
    t = np.arange(len(x)) / RATE
    y = tensor(code((0.8 * x[:, 0] + 0.2 * np.sin(2 * np.pi * t))[:, None].astype(np.float32), RATE, "opus", 96))
    measurement = measure_array(y, RATE)
    assert measurement.kinds == ("none",) and measurement.baseline is None


def test_restoring_without_the_baseline_keeps_reliable_samples_and_streams_exactly(coded_on_a_drift, tmp_path):
    model = load_model("unet-music-reclip", precision="fp32")
    y = coded_on_a_drift
    restored, report = restore_array(y, RATE, model)
    assert report.clipped and report.kind == "hard-coded"
    measurement = measure_array(y, RATE)
    masks = measurement.physics.masks(measurement.level_view(y))
    assert masks.clipped.any()
    assert torch.equal(restored[masks.reliable], y[masks.reliable])  # bit-exact where the mask says reliable
    assert (restored[masks.high] >= y[masks.high]).all() and (restored[masks.low] <= y[masks.low]).all()
    assert float(restored.abs().max()) > float(y.abs().max())
    sf.write(tmp_path / "in.wav", y.T.numpy(), RATE, subtype="FLOAT")
    note = restore_file(tmp_path / "in.wav", tmp_path / "blocks.wav", model, block_seconds=0.5)
    assert "lossy-coded or filtered, on a moving baseline (confidence" in note
    streamed = sf.read(tmp_path / "blocks.wav", dtype="float32", always_2d=True)[0].T
    whole = restored.numpy()
    assert np.linalg.norm(streamed - whole) / np.linalg.norm(whole) < 1e-5


def test_the_baseline_is_kept_only_where_both_polarities_clip_at_agreeing_levels():
    def polarity(kind: str, level: float) -> PolarityEstimate:
        return PolarityEstimate(level=level, kind=kind, confidence=0.7, ratio=2.0, tail_index=0.3, peak=0.9)

    both = CodedClipLevel(high=[polarity("hard-coded", 0.288)], low=[polarity("hard-coded", 0.301)])
    assert polarities_agree(both)
    one_sided = CodedClipLevel(high=[polarity("hard-coded", 0.019)], low=[polarity("none", 0.903)])  # clean music
    assert not polarities_agree(one_sided)
    apart = CodedClipLevel(high=[polarity("hard-coded", 0.30)], low=[polarity("hard-coded", 0.40)])
    assert not polarities_agree(apart)
    other_channel = CodedClipLevel(
        high=[polarity("none", 0.9), polarity("hard-coded", 0.5)],
        low=[polarity("none", 0.9), polarity("hard-coded", 0.52)],
    )
    assert polarities_agree(other_channel)
