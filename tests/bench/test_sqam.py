"""``declip bench sqam`` end to end on two short 16-bit excerpts at one level (the CI smoke run)."""

import json

import numpy as np
import pytest
import soundfile as sf

from declip.bench.sqam import read_excerpt, score
from declip.cli import main
from declip.physics import sdr, threshold_for_sdr
from tests.conftest import music


@pytest.fixture
def excerpts(tmp_path, monkeypatch):
    """Two tonal 16-bit excerpts; A-SPADE with short windows so that it runs in a second."""
    from declip.baselines import ASPADE
    from declip.inference import methods

    monkeypatch.setattr(methods, "SETTINGS", ASPADE(window=1024, hop=256, max_iterations=300))
    t = np.arange(8000) / 16000
    for seed in (1, 2):
        x = (
            0.5 * np.sin(2 * np.pi * 440 * seed * t)
            + 0.3 * np.sin(2 * np.pi * 660 * t + seed)
            + 0.02 * music(0.5, 16000, 1, seed)[:, 0]
        )
        sf.write(tmp_path / f"a0{seed}_test.wav", 0.8 * x / np.abs(x).max(), 16000, subtype="PCM_16")
    return tmp_path


def test_the_command_scores_models_and_aspade_and_writes_json_and_markdown(checkpoint, excerpts, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    args = ["bench", "sqam", "--data", str(excerpts), "--model", str(checkpoint), "--method", "aspade"]
    assert main(args + ["--levels", "10", "--json", str(out / "r.json"), "--markdown", str(out / "r.md")]) == 0
    report = json.loads((out / "r.json").read_text())
    assert report["files"] == ["a01_test", "a02_test"] and report["levels"] == [10.0]
    aspade = report["methods"]["A-SPADE (declip)"]
    assert aspade["delta_sdr"]["10"] > 1.0  # A-SPADE really restores
    assert set(aspade["per_file"]) == {"a01_test", "a02_test"} and aspade["real_time_factor"] > 0
    table = (out / "r.md").read_text()
    assert "| A-SPADE (published) | 17.28 |" in table and str(checkpoint) in table
    assert table in capsys.readouterr().out


def test_scores_follow_the_protocol(excerpts):
    class Identity:  # returns the clipped input: ΔSDR must be exactly 0
        sample_rate, channels, hop, context, info, device = None, 1, 1, 0, {}, "cpu"

        def estimate(self, items, physics, chunk, batch_size, progress=None, span=None):
            return items.clone()

    files = sorted(excerpts.glob("*.wav"))
    result = score("identity", Identity(), files, (5.0,))
    assert result.delta_sdr[5.0] == pytest.approx(0.0, abs=1e-6) and result.delta_si_sdr[5.0] == pytest.approx(
        0, abs=1e-6
    )
    x, _ = read_excerpt(files[0])
    theta = threshold_for_sdr(x[None], 5.0)[0]
    assert float(sdr(x, x.clamp(-theta, theta))) == pytest.approx(5.0, abs=0.01)


def test_bad_data_is_named(tmp_path, capsys):
    assert main(["bench", "sqam", "--data", str(tmp_path), "--method", "aspade"]) == 2
    assert "no .wav excerpts" in capsys.readouterr().err
    sf.write(tmp_path / "stereo.wav", np.zeros((100, 2)), 16000, subtype="PCM_16")
    assert main(["bench", "sqam", "--data", str(tmp_path), "--method", "aspade"]) == 2
    assert "mono 16-bit" in capsys.readouterr().err
