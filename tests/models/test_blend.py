"""Blend: two backbones mixed by a weight fitted on the input clipped again (no clean audio)."""

import math

import pytest
import torch
from torch import nn

from declip.errors import ConfigError
from declip.models import Blend, UNet, UnfoldedSPADE
from declip.models.blend import consistent
from declip.physics import sdr


class Zero(nn.Module):
    """No correction: the clipped input as it is."""

    channels = 1

    def forward(self, inp):
        return torch.zeros_like(inp[:, :1])


class Peaks(nn.Module):
    """Records the largest input each call sees and adds a fixed outward correction (in the units it sees)."""

    channels = 1

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, inp):
        self.seen.append(float(inp[:, :1].abs().max()))
        return 0.1 * inp[:, 1:]


def sparse(length=4096, seed=0):
    """A sum of a few steady partials: what A-SPADE restores well and doing nothing does not."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 16000
    x = sum(
        float(a) * torch.sin(2 * math.pi * float(f) * t + float(p))
        for a, f, p in zip(torch.rand(3, generator=generator) + 0.5, 200 + 900 * torch.rand(3, generator=generator),
                           6 * torch.rand(3, generator=generator))
    )  # fmt: skip
    return (x / x.abs().max())[None, None]


def backbone_input(x, level):
    y = x.clamp(-level, level)
    signed = (y >= level).float() - (y <= -level).float()
    return torch.cat([y / level, signed], dim=1), y / level


def unfolded():
    return UnfoldedSPADE(channels=1, window=512, hop=128, iterations=40, k_step=2, bands=2, sharpness=1000.0)


def test_the_output_is_consistent_and_each_channel_has_its_weight():
    torch.manual_seed(0)
    blend = Blend(
        {"class_path": "declip.models.unet.UNet", "init_args": {"channels": 2, "widths": [4, 8]}},
        {"class_path": "declip.models.unet.UNet", "init_args": {"channels": 2, "widths": [4, 8], "kernel_size": 3}},
        channels=2, span=501,
    )  # fmt: skip
    inp, _ = backbone_input(torch.randn(3, 2, 2000) * 0.5, 0.4)
    signed = inp[:, 2:]
    with torch.no_grad():
        out = blend(inp)
    assert torch.equal(out, consistent(out, signed))  # zero on reliable samples, outward on clipped ones
    assert bool((out != 0).any())
    with torch.no_grad():
        weight = blend.weight(inp[:, :2], signed)
    assert weight.shape == (3, 2, 2000) and bool(((weight >= 0) & (weight <= 1)).all())
    assert not torch.equal(weight[:, 0], weight[:, 1])  # fitted on each channel's own samples


def test_the_weight_goes_to_the_backbone_that_restores_the_input_clipped_again():
    x = sparse()
    inp, u = backbone_input(x, 0.6)
    truth = x / 0.6
    with torch.no_grad():
        towards = Blend(Zero(), unfolded(), span=8193)  # span over the whole signal: one weight
        weight = towards.weight(u, inp[:, 1:])
        mixed = u + towards(inp)
        alone = u + consistent(towards.secondary(inp), inp[:, 1:])
        away = Blend(unfolded(), Zero(), span=8193)
        kept = away.weight(u, inp[:, 1:])
    assert float(weight.mean()) > 0.8 and float(kept.mean()) < 0.2
    assert sdr(truth, mixed) > sdr(truth, u) + 5  # far better than the clipped input, which Zero leaves
    assert sdr(truth, mixed) > sdr(truth, alone) - 1.5


def test_the_weight_is_the_least_squares_mix_on_the_samples_the_second_clipping_hid():
    x = sparse(seed=1)
    inp, u = backbone_input(x, 0.7)
    signed = inp[:, 1:]
    blend = Blend(unfolded(), Zero(), g=1.5, span=8193)
    with torch.no_grad():
        weight = float(blend.weight(u, signed)[0, 0, 0])
        again = u.clamp(-1 / 1.5, 1 / 1.5)
        signed_again = (again >= 1 / 1.5).float() - (again <= -1 / 1.5).float()
        scaled = torch.cat([again * 1.5, signed_again], 1)  # as the backbone sees it: the level at 1
        primary = again + consistent(blend.primary(scaled), signed_again) / 1.5
    hidden = (signed_again != 0) & (signed == 0)

    def error(w):
        return float(((u - ((1 - w) * primary + w * again))[hidden] ** 2).sum())

    assert bool(hidden.any()) and 0 < weight < 1
    assert error(weight) <= min(error(weight - 0.02), error(weight + 0.02))


def test_each_backbone_sees_the_input_clipped_again_as_any_input_with_its_level_at_one():
    x = sparse(seed=2)
    inp, u = backbone_input(x, 0.5)
    peaks = Peaks()
    blend = Blend(Zero(), peaks, g=2.0, span=8193)
    with torch.no_grad():
        out = blend(inp)
    assert peaks.seen == [1.0, 1.0]  # clipped again at half the level, then scaled to it; the input as it is
    weight = float(blend.weight(u, inp[:, 1:])[0, 0, 0])
    assert torch.allclose(out, weight * 0.1 * inp[:, 1:])


def test_nothing_clipped_gives_no_correction_and_bad_settings_stop_with_one_line():
    blend = Blend(UNet(channels=1, widths=(4, 8)), Zero())
    inp = torch.cat([torch.randn(1, 1, 500) * 0.1, torch.zeros(1, 1, 500)], 1)
    assert torch.equal(blend(inp), torch.zeros(1, 1, 500))
    bad = [
        ({"g": 1.0}, "Blend g must be above 1"),
        ({"span": 0}, "Blend span must be at least 1"),
        ({"secondary": {"class_path": "os.system", "init_args": {}}}, "'os.system' is not a declip model"),
        (  # a function of declip.models that would build what it is given: not a backbone class
            {"secondary": {"class_path": "declip.models.blend.build_backbone", "init_args": {"config": {}}}},
            "is not a declip backbone class",
        ),
        ({"primary": {"class_path": "declip.models.blend.F", "init_args": {}}}, "is not a declip backbone class"),
        ({"channels": 2}, r"Blend has 2 channel\(s\) but its primary has 1"),
    ]
    for override, message in bad:
        settings = {"primary": UNet(channels=1, widths=(4, 8)), "secondary": Zero(), **override}
        with pytest.raises(ConfigError, match=message) as raised:
            Blend(**settings)
        assert "\n" not in str(raised.value)


def test_its_reach_is_the_farther_backbones_plus_half_the_span():
    blend = Blend(unfolded(), UNet(channels=1, widths=(4, 8)), span=1001)
    assert blend.receptive_field == 512 + 500 + 1  # the unfolded model's window is the farther
    assert blend.hop == math.lcm(128, 2)
