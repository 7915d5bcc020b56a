import pytest
import torch

from declip.detection.plateaus import detect_clip_level
from declip.inference.chunks import chunk_plan, receptive_field, restore_chunked
from declip.models import MLP, Blend, Declipper, Demucs, UNet, UnfoldedSPADE
from declip.models.reach import reach
from declip.physics import Clipping
from tests.conftest import music

BACKBONES = {
    "unet": lambda: UNet(channels=1, widths=(8, 16, 32)),
    "unet-strided": lambda: UNet(channels=1, widths=(8, 16, 32), stem_stride=4),
    "demucs": lambda: Demucs(channels=1, hidden=8, depth=3, bottleneck="none"),
    "mlp": lambda: MLP(channels=1, frame=256, hidden=64, layers=2),
    "unfolded": lambda: UnfoldedSPADE(channels=1, window=256, hop=64, iterations=3, k_step=4, bands=4),
    "blend": lambda: Blend(
        UnfoldedSPADE(channels=1, window=256, hop=64, iterations=3, k_step=4, bands=4),
        UNet(channels=1, widths=(8, 16)),
        span=301,
    ),  # fmt: skip
}


def test_chunk_plan_tiles_the_signal_on_the_hop_grid():
    plan = chunk_plan(10_000, 3000, 500, 64)
    cores = [(a, b) for _, _, a, b in plan]
    assert cores[0][0] == 0 and cores[-1][1] == 10_000
    assert all(b == c for (_, b), (c, _) in zip(cores, cores[1:]))
    assert all(start % 64 == 0 for start, _, _, _ in plan)
    assert all(start <= a - 512 or start == 0 for start, _, a, _ in plan)  # context, on the hop grid
    assert all(stop >= b + 500 or stop == 10_000 for _, stop, _, b in plan)
    assert len({stop - start for start, stop, _, _ in plan[:-1]}) == 1  # one window length but the last
    assert 0 <= (plan[-1][1] - plan[-1][0]) - (plan[0][1] - plan[0][0]) < 64
    part = chunk_plan(10_000, 3000, 500, 64, span=(2000, 5000))
    assert part[0][2] == 1984 and part[-1][3] == 5000  # cores tile the span, on the grid


@pytest.mark.parametrize("name", BACKBONES)
def test_chunked_restoration_equals_one_pass(name):
    torch.manual_seed(0)
    model = Declipper(BACKBONES[name]()).eval()
    x = torch.from_numpy(music(1.0, 16000, 2, 3).T.copy())[:, None] * 2  # two items, mono model
    level = detect_clip_level(x[:, 0].clamp(-0.5, 0.4))
    y = x.clamp(-0.5, 0.4)
    physics = Clipping(level.high[:, None], level.low[:, None])
    with torch.inference_mode():
        whole = model(y, physics)
    hop = model.backbone.hop
    context = receptive_field(model, 1) + hop
    chunked = restore_chunked(model, y, physics, chunk=1000, context=context, hop=hop, batch_size=3)
    relative = (chunked - whole).norm() / whole.norm()
    assert relative < 1e-4
    assert len(chunk_plan(y.shape[-1], 1000, context, hop)) > 3  # it really was chunked


def test_receptive_field_of_a_convolutional_model_is_finite():
    model = Declipper(UNet(channels=1, widths=(8, 16), kernel_size=5))
    field = receptive_field(model, 1, probe=4096)
    assert 4 < field < 200
    state = torch.get_rng_state()
    assert receptive_field(model, 1, probe=4096) == field  # its own fixed seed: one answer, the global state untouched
    assert torch.equal(torch.get_rng_state(), state)


def test_reach_lengthens_the_probe_for_a_wide_backbone():
    wide = torch.nn.Conv1d(2, 1, 3001, padding=1500)  # reaches 1500 samples each side: past a quarter of 4096
    assert reach(wide, 1) == 1500
    assert reach(wide, 1, probe=2048) == 1024  # capped by the probe: all of it


class Counting(torch.nn.Module):
    """Wraps a declipper and counts the windows it is run on."""

    def __init__(self, model):
        super().__init__()
        self.model, self.windows = model, 0

    def forward(self, y, physics):
        self.windows += y.shape[0]
        return self.model(y, physics)


def test_skipping_unclipped_windows_changes_nothing_after_the_projection():
    torch.manual_seed(0)
    model = Counting(Declipper(UNet(channels=1, widths=(8, 16), stem_stride=2)).eval())
    x = torch.from_numpy(music(1.0, 16000, 1, 4).T.copy())[:, None] * 0.2
    x[..., 7000:9000] *= 5  # one loud passage: the only clipped one
    physics = Clipping(torch.tensor(0.5))
    y = physics(x)
    hop, context = 4, receptive_field(model.model, 1) + 4
    full = restore_chunked(model, y, physics, chunk=1000, context=context, hop=hop)
    computed = model.windows
    model.windows = 0
    skipped = restore_chunked(model, y, physics, chunk=1000, context=context, hop=hop, skip_unclipped=True)
    assert 0 < model.windows <= 4 < computed == 16
    assert torch.equal(physics.project(skipped, y), physics.project(full, y))
