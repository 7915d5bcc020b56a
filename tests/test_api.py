"""``declip.restore``: arrays and files, a loaded model, a checkpoint or a classical method object."""

import numpy as np
import pytest
import soundfile as sf

from declip.errors import ConfigError
from declip.inference import LoadedModel
from tests.conftest import music


def test_python_api_on_arrays_and_files(checkpoint, tmp_path):
    import declip

    model = LoadedModel.from_checkpoint(checkpoint)
    x = music(0.5, 16000, 2, 9)
    y = np.clip(x, -0.2, 0.2)
    restored = declip.restore(y, model, sample_rate=16000)
    assert restored.shape == y.shape and np.array_equal(restored[np.abs(y) < 0.2], y[np.abs(y) < 0.2])
    sf.write(tmp_path / "in.wav", y, 16000, subtype="FLOAT")
    account = declip.restore(tmp_path / "in.wav", checkpoint, output=tmp_path / "out.wav", precision="fp32")
    assert "clipped" in account
    np.testing.assert_allclose(sf.read(tmp_path / "out.wav", dtype="float32")[0], restored, atol=1e-6)
    with pytest.raises(ConfigError, match="no samples"):
        declip.restore(np.zeros((0, 2), np.float32), model, sample_rate=16000)


def test_the_python_api_takes_a_classical_method_object():
    import declip
    from declip.baselines import ASPADE
    from declip.inference.methods import ASPADEMethod

    x = music(0.5, 16000, 1, 3).astype(np.float32)
    x = 0.9 * x / np.abs(x).max()
    y = np.clip(x, -0.5, 0.5)
    small = ASPADEMethod(settings=ASPADE(window=512, hop=128, max_iterations=50))  # fast, not the survey's
    restored = declip.restore(y, small, sample_rate=16000)
    reliable = np.abs(y) < 0.5
    assert restored.shape == y.shape and np.array_equal(restored[reliable], y[reliable])
    assert np.abs(restored).max() > 0.5  # peaks restored beyond the clip level
