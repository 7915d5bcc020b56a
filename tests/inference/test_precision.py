import pytest
import torch
from torch import nn

from declip.detection.plateaus import detect_clip_level
from declip.errors import ConfigError
from declip.inference import precision
from declip.inference.chunks import receptive_field, restore_chunked
from declip.models import Declipper, UNet, UnfoldedSPADE
from declip.physics import Clipping
from tests.conftest import music


class Cancelling(nn.Module):
    """A backbone whose output is the small difference of two large convolutions: bfloat16 rounding
    of either swamps it, on any hardware."""

    channels = 1

    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(2, 1, 5, padding=2, bias=False)
        self.b = nn.Conv1d(2, 1, 5, padding=2, bias=False)
        with torch.no_grad():
            self.b.weight.copy_(self.a.weight * (1 + 1e-3))

    def forward(self, inp):
        return (self.b(inp) - self.a(inp)) * 1000


def test_strided_unet_in_bf16_agrees_with_fp32():
    # oneDNN's bf16 strided convolution with few input channels is wrong on some CPUs: the stem stays fp32
    torch.manual_seed(0)
    model = Declipper(UNet(channels=2, widths=(8, 16, 32), stem_stride=16)).eval()
    assert precision.bf16_error(model, 2, "cpu") < precision.PROBE_TOLERANCE


def test_a_model_that_disagrees_in_bf16_is_refused_or_falls_back(monkeypatch):
    torch.manual_seed(0)
    model = Declipper(Cancelling()).eval()
    assert precision.bf16_error(model, 1, "cpu") > precision.PROBE_TOLERANCE
    with pytest.raises(ConfigError, match="--precision fp32"):
        precision.resolve("bf16", model, 1, "cpu")
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    with pytest.warns(UserWarning, match="using float32"):
        assert precision.resolve("auto", model, 1, "cpu") == "fp32"
    unfolded = Declipper(UnfoldedSPADE(window=256, hop=64, iterations=2)).eval()
    monkeypatch.setattr(precision, "bf16_error", lambda *args: pytest.fail("probed a model that gains nothing"))
    assert precision.resolve("auto", unfolded, 1, "cpu") == "fp32"  # float32 whatever autocast asks: no probe
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert precision.resolve("auto", Declipper(UNet(channels=1, widths=(8,))), 1, "cpu") == "fp32"
    with pytest.raises(ConfigError, match="precision must be one of"):
        precision.resolve("fp16", model, 1, "cpu")


def test_chunked_bf16_restoration_is_close_to_fp32_one_pass():
    torch.manual_seed(0)
    model = Declipper(UNet(channels=1, widths=(8, 16, 32), stem_stride=4)).eval()
    x = torch.from_numpy(music(1.0, 16000, 2, 3).T.copy())[:, None] * 2
    level = detect_clip_level(x[:, 0].clamp(-0.5, 0.4))
    y = x.clamp(-0.5, 0.4)
    physics = Clipping(level.high[:, None], level.low[:, None])
    with torch.inference_mode():
        whole = model(y, physics)
    context = receptive_field(model, 1) + model.backbone.hop
    chunked = restore_chunked(model, y, physics, 1000, context, model.backbone.hop, 3, precision="bf16")
    correction = (whole - y).norm()
    assert chunked.dtype == torch.float32
    assert 0 < (chunked - whole).norm() / correction < precision.PROBE_TOLERANCE  # bf16 did run, and is close


def test_strided_unet_keeps_the_weights_dtype_outside_autocast():
    x = torch.randn(2, 2, 1024)
    for dtype in (torch.float64, torch.bfloat16):
        net = UNet(channels=1, widths=(4, 8), stem_stride=4).to(dtype)
        assert net(x.to(dtype)).dtype == dtype
