"""Restoring clipped-then-coded audio with real encoders: reliable samples, blocks against one pass,
the plateau path left as it was, and the analysis of a clipped file."""

import numpy as np
import pytest
import soundfile as sf
import torch

from declip.data.codecs import code
from declip.detection.plateaus import detect_clip_level
from declip.inference.analysis import analyze_array, measure_array
from declip.inference.estimate import network_estimate
from declip.inference.restore import default_windows, restore_array, restore_file
from declip.physics import Clipping
from declip.zoo import load_model
from tests.detection.signals import RATE, clipped_at, rich_music, sine_gain, tensor


@pytest.fixture(scope="module")
def signal():
    return rich_music(6.0, 1, 7)


def test_restoring_coded_clipping_keeps_reliable_samples_and_gains(signal):
    model = load_model("unet-music-reclip", precision="fp32")
    clipped, theta = clipped_at(signal, 5)
    y = tensor(code(clipped, RATE, "mp3", 128))
    restored, report = restore_array(y, RATE, model)
    assert report.clipped and report.kind == "hard-coded" and 0.5 <= report.confidence <= 1
    measurement = measure_array(y, RATE)
    assert measurement.baseline is None  # found as it is: the levels apply to y itself
    masks = measurement.physics.masks(y)
    assert masks.clipped.any()
    assert torch.equal(restored[masks.reliable], y[masks.reliable])  # bit-exact where the mask says reliable
    assert (restored[masks.high] >= y[masks.high]).all() and (restored[masks.low] <= y[masks.low]).all()
    reference = tensor(signal) * sine_gain("mp3")
    error_in, error_out = (y - reference).pow(2).sum(), (restored - reference).pow(2).sum()
    assert error_out < error_in  # closer to the clean signal than the coded input


def test_uncoded_hard_clipping_takes_the_plateau_path_unchanged(signal):
    clipped, _ = clipped_at(signal, 5)
    y = tensor(clipped)
    model = load_model("unet-music-reclip", precision="fp32")
    restored, report = restore_array(y, RATE, model)
    level = detect_clip_level(y)  # the path restore took before coded detection existed, step by step
    physics = Clipping(level.high, level.low)
    before = physics.project(network_estimate(y, RATE, model, physics, *default_windows("cpu")), y)
    assert report.kind == "hard" and report.confidence == 1.0
    assert torch.equal(restored, before)


def test_analysis_counts_runs_and_shares(signal):
    clipped, theta = clipped_at(signal, 5)
    analysis = analyze_array(tensor(clipped), RATE, "x.wav")
    (channel,) = analysis.channels
    expected = np.abs(clipped[:, 0]) >= theta * (1 - 1e-6)
    assert channel.kind == "hard" and channel.clipped_share == pytest.approx(expected.mean(), rel=1e-3)
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], expected.astype(int), [0]]))))[::2]
    assert channel.longest_run == runs.max()
    assert 0 <= analysis.worst_second <= 5


def test_restoring_coded_clipping_by_blocks_equals_one_pass(tmp_path):
    """Learned masks look at their neighbours: each block's masks come from its window with margin,
    so a file restored in blocks of 0.5 s equals the array restored at once."""
    model = load_model("unet-music-reclip", precision="fp32")
    clipped, _ = clipped_at(rich_music(3.0, 2, 5), 5)
    y = code(clipped, RATE, "opus", 96)
    sf.write(tmp_path / "in.wav", y, RATE, subtype="FLOAT")
    note = restore_file(tmp_path / "in.wav", tmp_path / "blocks.wav", model, block_seconds=0.5)
    assert "lossy-coded" in note
    streamed = sf.read(tmp_path / "blocks.wav", dtype="float32")[0]
    whole, report = restore_array(tensor(y), RATE, model)
    assert report.kind == "hard-coded"
    whole = whole.T.numpy()
    assert np.linalg.norm(streamed - whole) / np.linalg.norm(whole) < 1e-5
    assert not np.array_equal(streamed, y)
