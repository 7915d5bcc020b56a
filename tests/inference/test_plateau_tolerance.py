"""24-bit PCM: the detection tolerance (1e-5 relative, about 84 steps at full scale) counts samples a little
inside a plateau as clipped; restoring must never move one of them below its input."""

import numpy as np
import soundfile as sf
import torch

from declip.detection.plateaus import detect_clip_level
from declip.inference import LoadedModel
from declip.inference.restore import restore_file
from declip.models import Declipper
from declip.physics import Clipping
from tests.conftest import music

LSB24 = 2.0**-23


class _Inward(torch.nn.Module):
    """A backbone that moves every clipped sample 1 % of the level toward zero: the estimate undershoots
    the whole plateau, the worst case for samples inside the tolerance band."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # inference reads the device from the parameters

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (batch, 2, time): y / scale and the signed mask
        return -0.01 * z[:, 1:]


def test_projection_keeps_samples_inside_the_tolerance_band_at_or_beyond_their_input():
    peak = 0.5
    y = torch.tensor([[0.1, peak, peak - 20 * LSB24, peak - 40 * LSB24, -peak + 30 * LSB24, -peak]])
    physics = Clipping(torch.tensor([[peak * (1 - 1e-5)]]), torch.tensor([[-peak * (1 - 1e-5)]]))
    assert physics.masks(y).clipped[0, 1:].all()  # the ripple counts as clipped
    estimate = torch.zeros_like(y)  # an estimate that undershoots every clipped sample
    out = physics.project(estimate, y)
    assert out[0, 0] == y[0, 0]  # reliable: bit-exact
    assert (out[0, 1:4] >= y[0, 1:4]).all() and (out[0, 4:] <= y[0, 4:]).all()
    assert torch.equal(physics.project(out, y), out)  # idempotent


def test_restoring_a_24_bit_file_never_moves_plateau_samples_inside(tmp_path):
    rate, level = 16000, 0.4
    x = music(1.0, rate, 1, 3)
    x = 0.9 * x / np.abs(x).max()
    y = np.clip(x, -level, level)
    plateau = np.abs(y) >= level
    ripple = np.random.default_rng(0).integers(0, 30, plateau.sum()) * LSB24  # within the tolerance band
    y[plateau] -= np.sign(y[plateau]) * ripple
    sf.write(tmp_path / "in.wav", y, rate, subtype="PCM_24")
    stored = sf.read(tmp_path / "in.wav", dtype="float32", always_2d=True)[0]
    level_found = detect_clip_level(torch.from_numpy(stored.T.copy()))
    assert level_found.any

    loaded = LoadedModel.from_module_model(Declipper(_Inward()).eval(), rate, 1)
    restore_file(tmp_path / "in.wav", tmp_path / "out.wav", loaded)
    out = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)[0]
    high = stored >= level_found.high[0].item()
    low = stored <= level_found.low[0].item()
    assert high.any() and low.any()
    assert (out[high] >= stored[high]).all() and (out[low] <= stored[low]).all()
    reliable = ~(high | low)
    assert np.array_equal(out[reliable], stored[reliable])
