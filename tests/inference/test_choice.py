"""Re-clipping's choice among a model's settings: which seconds it asks, which candidate it keeps, and that the
array and file paths choose alike and restore with the chosen setting."""

import time

import numpy as np
import soundfile as sf
import torch

from declip.detection.measurement import plateau_measurement
from declip.inference import LoadedModel
from declip.inference.choice import busiest, choose, hidden, per_second
from declip.inference.methods import SplineMethod
from declip.inference.restore import AS_LOADED, default_windows, restore_array, restore_file
from declip.physics import Clipping
from tests.conftest import music

RATE = 16000


class Overshoot(torch.nn.Module):
    """A poor declipper: every clipped sample pushed to ``1 + push`` times the level."""

    def __init__(self, push: float = 1.0) -> None:
        super().__init__()
        self.push = push

    def forward(self, y, physics):
        return y + physics.masks(y).signed * physics.scale * self.push


def poor(push: float = 1.0) -> LoadedModel:
    return LoadedModel(Overshoot(push), sample_rate=RATE, channels=1, hop=1, context=0)


class SlowSpline(SplineMethod):
    """The spline, a quarter second slower."""

    def estimate(self, *args, **kwargs):
        time.sleep(0.25)
        return super().estimate(*args, **kwargs)


def loud_fourth_second(level: float = 0.3) -> torch.Tensor:
    """``(2, frames)``: 5 s too quiet to clip but the fourth, clipped at ``level``."""
    x = torch.from_numpy(music(5, RATE, 2, 7).T.copy())
    x = 0.9 * x / x.abs().max()
    x[:, : 3 * RATE] *= 0.25
    x[:, 4 * RATE :] *= 0.25
    return x.clamp(-level, level)


def test_busiest_takes_the_earliest_seconds_that_hold_most_and_the_whole_of_a_short_recording():
    counts = torch.tensor([0.0, 5, 1, 5, 9, 0, 9, 5])
    assert busiest(counts, 10, 80, 2) == (30, 20)  # seconds 3-4 and 6-7 both sum 14: the earlier
    assert busiest(counts, 10, 80, 1.5) == (30, 20)  # whole seconds, rounded up
    assert busiest(counts, 10, 75, 8) == (0, 75)
    assert busiest(counts, 10, 75, 20) == (0, 75)


def test_hidden_samples_are_the_reliable_ones_a_harder_clipping_reaches_counted_per_second():
    y = torch.tensor([[0.0, 0.25, 0.3, -0.3, -0.26, 0.1, 0.27, -0.2]])
    mask = hidden(y, Clipping(torch.tensor([[0.3]])), g=1.25)  # harder levels +-0.24
    assert mask.tolist() == [[False, True, False, False, True, False, True, False]]
    assert per_second(mask, 4, 0, 2).tolist() == [1.0, 2.0]
    assert per_second(mask, 4, 4, 3).tolist() == [0.0, 1.0, 2.0]  # the mask starts at frame 4


def test_choose_keeps_the_candidate_that_restores_the_second_clipping_best():
    y = loud_fourth_second()[:1, 3 * RATE : 5 * RATE]
    measurement = plateau_measurement(Clipping(torch.tensor([[0.3]])), True, 1)
    windows = default_windows("cpu")
    for candidates in ({"spline": SplineMethod(), "poor": poor()}, {"poor": poor(), "spline": SplineMethod()}):
        choice = choose(y, RATE, candidates, measurement, windows)
        assert choice.name == "spline" and set(choice.errors) == {"spline", "poor"}
        assert choice.errors["spline"] < choice.errors["poor"] and choice.hidden == int(hidden(y, Clipping(0.3)).sum())
        assert "by re-clipping 2.0 s at 0.0 s" in choice.describe()
    for candidates in ({"slow": SlowSpline(), "fast": SplineMethod()}, {"fast": SplineMethod(), "slow": SlowSpline()}):
        tie = choose(y, RATE, candidates, measurement, windows)  # the same error: the faster
        assert tie.name == "fast" and tie.errors["fast"] == tie.errors["slow"] and tie.seconds["slow"] >= 0.25
        assert "a tie: the faster taken" in tie.describe()
    quiet = choose(0.1 * y, RATE, {"first": poor(), "second": SplineMethod()}, measurement, windows)
    assert quiet.name == "first" and quiet.hidden == 0 and "hid no sample" in quiet.describe()


def test_the_array_and_the_file_choose_the_same_seconds_and_restore_with_the_chosen_setting(tmp_path):
    y = loud_fourth_second()
    alternatives = {"spline": SplineMethod()}
    restored, report = restore_array(y, RATE, poor(), alternatives=alternatives, choice_seconds=1)
    choice = report.choice
    assert choice.name == "spline" and choice.start == 3 * RATE and choice.frames == RATE  # the loud second
    assert torch.equal(restored, restore_array(y, RATE, SplineMethod())[0])
    kept, kept_report = restore_array(y, RATE, poor(), alternatives={"poorer": poor(2.0)}, choice_seconds=1)
    assert kept_report.choice.name == AS_LOADED and torch.equal(kept, restore_array(y, RATE, poor())[0])
    src = tmp_path / "take.wav"
    sf.write(src, y.T.numpy(), RATE, subtype="FLOAT")
    note = restore_file(
        src, tmp_path / "out.wav", poor(), alternatives=alternatives, choice_seconds=1, block_seconds=1.5
    )  # blocks that do not fall on whole seconds: the scan counts the same seconds
    assert choice.describe() in note
    assert np.array_equal(sf.read(tmp_path / "out.wav", dtype="float32")[0], restored.T.numpy())
    unclipped = tmp_path / "quiet.wav"
    sf.write(unclipped, 0.2 * music(2, RATE, 2, 7), RATE, subtype="FLOAT")
    note = restore_file(unclipped, tmp_path / "quiet-out.wav", poor(), alternatives=alternatives)
    assert "re-clipping" not in note and "nothing clipped" in note
