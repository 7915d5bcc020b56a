import pytest
import torch

from declip.config import config_of, instantiate
from declip.errors import ConfigError
from declip.models import MLP, Declipper, Demucs, UNet, UnfoldedSPADE
from declip.physics import Clipping, threshold_for_sdr

BACKBONES = {
    "mlp": lambda c: MLP(channels=c, frame=64, hidden=32, layers=2),
    "unet": lambda c: UNet(channels=c, widths=(4, 8, 16)),
    "unet-strided-stem": lambda c: UNet(channels=c, widths=(4, 8), stem_stride=4),
    "unet-audio-rate-head": lambda c: UNet(channels=c, widths=(4, 8), stem_stride=4, head_width=3),
    "demucs-lstm": lambda c: Demucs(channels=c, hidden=4, depth=3, bottleneck="lstm", bottleneck_layers=1),
    "demucs-attention": lambda c: Demucs(channels=c, hidden=4, depth=2, bottleneck="attention", heads=2),
    "unfolded": lambda c: UnfoldedSPADE(channels=c, window=64, hop=16, iterations=2, k_step=4, bands=3),
}


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("length", [1, 7, 333, 1001])
def test_backbones_keep_shape_for_any_length(name, channels, length):
    backbone = BACKBONES[name](channels)
    out = backbone(torch.randn(2, 2 * channels, length))
    assert out.shape == (2, channels, length)


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_config_round_trip(name):
    backbone = BACKBONES[name](2)
    rebuilt = instantiate(config_of(backbone))
    rebuilt.load_state_dict(backbone.state_dict())
    inp = torch.randn(1, 4, 300)
    assert torch.equal(rebuilt(inp), backbone(inp))


@pytest.mark.parametrize("consistent", [False, True])
def test_declipper_is_equivariant_to_a_common_rescaling(consistent):
    torch.manual_seed(0)
    model = Declipper(UNet(channels=2, widths=(4, 8)), consistent=consistent)
    x = torch.randn(2, 2, 500)
    physics = Clipping(threshold_for_sdr(x, 3.0)[:, None, None])
    y = physics(x)
    a = 0.01
    out = model(y, physics)
    out_scaled = model(a * y, Clipping(a * physics.high))
    assert torch.allclose(out_scaled, a * out, rtol=1e-4, atol=1e-7)


def test_consistent_declipper_only_moves_clipped_samples_outwards():
    torch.manual_seed(0)
    model = Declipper(MLP(channels=1, frame=32, hidden=16, layers=2), consistent=True)
    x = torch.randn(3, 1, 100)
    physics = Clipping(threshold_for_sdr(x, 3.0)[:, None, None])
    y = physics(x)
    out = model(y, physics)
    assert torch.equal(physics.project(out, y), out)


def test_unet_head_sees_the_input_between_stem_steps():
    """Without a head, an input change inside one stem step reaches the output only through the
    strided stem; the head also sees the raw input at that sample, so its output differs there."""
    torch.manual_seed(0)
    plain = UNet(channels=1, widths=(4, 8), stem_stride=8)
    head = UNet(channels=1, widths=(4, 8), stem_stride=8, head_width=4)
    assert sum(p.numel() for p in head.parameters()) > sum(p.numel() for p in plain.parameters())
    inp = torch.randn(1, 2, 256)
    bumped = inp.clone()
    bumped[0, 0, 100] += 1.0
    change = (head(bumped) - head(inp)).abs()[0, 0]
    assert change[100] > 0 and change.argmax() in range(96, 105)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"head_width": -1}, "head_width must be >= 0; got -1"),
        ({"stem_stride": 0}, "stem_stride must be >= 1; got 0"),
        ({"kernel_size": 4}, "needs an odd kernel_size"),
    ],
)
def test_unet_rejects_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        UNet(channels=1, widths=(4, 8), **kwargs)
