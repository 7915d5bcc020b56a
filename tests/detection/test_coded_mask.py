"""Learned masks of clipped-then-coded audio (:class:`LearnedMaskClipping`), and the training that makes them."""

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from declip.data.codecs import code
from declip.detection.coded_mask import (
    DILATIONS,
    FLOOR,
    ClipMaskNet,
    LearnedMaskClipping,
    default_mask_net,
    load_mask_net,
    save_mask_net,
)
from declip.physics import Clipping
from declip.training.coded_mask import coded_pairs, main, train_mask_net
from tests.detection.signals import KBPS, RATE, clipped_at, rich_music, sine_gain, tensor


@pytest.fixture(scope="module")
def signal():
    return rich_music(6.0, 1, 7)


def coded(signal, codec, sdr_db):
    clipped, theta = clipped_at(signal, sdr_db)
    truth = torch.from_numpy(np.abs(clipped.T) >= theta * (1 - 1e-6))
    return tensor(code(clipped, RATE, codec, KBPS[codec])), theta * sine_gain(codec), truth


def operator(level, enabled=((True, True),)):
    return LearnedMaskClipping(torch.tensor([[level]]), torch.tensor([[-level]]), torch.tensor(enabled))


@pytest.mark.parametrize("codec, sdr_db", [("mp3", 1), ("mp3", 5), ("opus", 3), ("opus", 10), ("opus", 20)])
def test_the_shipped_network_errs_half_as_often_as_a_fixed_band(signal, codec, sdr_db):
    """Where a codec smears the runs (heavy clipping; Opus at any level) the band misses most of
    them (22-43 % of the clipped samples wrong); the network errs on 3-25 %."""
    y, level, truth = coded(signal, codec, sdr_db)
    learned = operator(level).masks(y).clipped
    band = y.abs() >= 0.97 * level
    errors, band_errors = int((learned != truth).sum()), int((band != truth).sum())
    assert errors < 0.7 * band_errors, (errors, band_errors)
    assert errors < 0.25 * int(truth.sum()), (errors, int(truth.sum()))


@pytest.mark.parametrize("sdr_db", [10, 20])
def test_after_mp3_under_light_clipping_the_network_is_about_as_good_as_the_band(signal, sdr_db):
    """LAME keeps short runs nearly flat: there the band is about right, and the network no worse than 10 % off it."""
    y, level, truth = coded(signal, "mp3", sdr_db)
    learned = operator(level).masks(y).clipped
    band = y.abs() >= 0.97 * level
    assert int((learned != truth).sum()) < 1.1 * int((band != truth).sum())


def test_only_the_polarities_found_clipped_are_marked_and_never_a_quiet_sample(signal):
    y, level, _ = coded(signal, "mp3", 3)
    both = operator(level).masks(y)
    high_only = operator(level, ((True, False),)).masks(y)
    assert both.low.any() and not high_only.low.any()
    assert torch.equal(high_only.high, both.high)
    assert (y[both.clipped].abs() >= FLOOR * level).all()
    assert not (both.high & both.low).any() and not (y[both.high] <= 0).any()


def test_the_network_sees_a_hard_clipped_recording_with_the_learned_masks(signal):
    y, level, _ = coded(signal, "opus", 5)
    physics = operator(level)
    masks = physics.masks(y)
    network_input = physics.network_input(y, masks)
    assert (network_input[masks.high] == level).all() and (network_input[masks.low] == -level).all()
    assert (network_input[masks.reliable].abs() < level).all()
    seen = Clipping(physics.high, physics.low).masks(network_input)  # what a declipper's forward computes
    assert torch.equal(seen.high, masks.high) and torch.equal(seen.low, masks.low)
    assert torch.equal(
        network_input[masks.reliable & (y.abs() < level * 0.99)], y[masks.reliable & (y.abs() < level * 0.99)]
    )


def test_the_projection_keeps_unmasked_samples_bit_exact(signal):
    y, level, _ = coded(signal, "mp3", 5)
    physics = operator(level)
    masks = physics.masks(y)
    estimate = y + 0.1 * torch.randn_like(y)
    out = physics.project(estimate, y, masks)
    assert torch.equal(out[masks.reliable], y[masks.reliable])
    assert (out[masks.high] >= y[masks.high]).all() and (out[masks.low] <= y[masks.low]).all()
    assert physics.to("cpu").context == default_mask_net().context > 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    for split, seed in (("train", 1), ("train", 2), ("valid", 3)):
        (root / split / f"track{seed}").mkdir(parents=True)
        sf.write(root / split / f"track{seed}" / "mixture.flac", rich_music(2.0, 2, seed), RATE, subtype="PCM_24")
    return root


def test_training_pairs_are_coded_windows_over_the_level_and_their_plateaus(corpus):
    u, clipped = coded_pairs(sorted(corpus.glob("train/*/mixture.flac")), 3, seed=0, seconds=0.5)
    assert u.shape == clipped.shape == (3, RATE // 2) and clipped.dtype == torch.bool
    assert clipped.any(1).all()  # 1-20 dB input SDR always clips something
    assert (u[clipped].abs() > 0.5).all() and 0.9 < float(u.abs().max()) < 1.5  # the coded level near 1


def test_a_short_training_run_writes_weights_the_operator_loads(corpus, tmp_path, capsys):
    out = tmp_path / "mask.safetensors"
    main(
        ["--music", str(corpus), "--items", "4", "--valid-items", "2", "--steps", "2", "--seed", "3", "--out", str(out)]
    )
    assert "valid errors per clipped sample" in capsys.readouterr().out
    net = load_mask_net(out)
    torch.manual_seed(3)
    start = ClipMaskNet()  # the run's initial weights (seeded as it seeds them)
    assert all(not torch.equal(a, b) for a, b in zip(net.parameters(), start.parameters()))  # every tensor trained
    y = torch.from_numpy(code(*clipped_at(rich_music(2.0, 1, 9), 5)[:1], RATE, "mp3", 128).T.copy())
    masks = LearnedMaskClipping(torch.tensor([[0.9]]), torch.tensor([[-0.9]]), torch.tensor([[True, True]]), net)
    assert masks.masks(y).high.shape == y.shape


def test_pairs_keep_to_the_input_sdr_range_given(corpus):
    files = sorted(corpus.glob("train/*/mixture.flac"))
    heavy, light, both = (
        coded_pairs(files, 12, seed=0, seconds=0.5, sdrs=ranges)[1].float().mean()
        for ranges in ([(2.0, 2.0)], [(18.0, 18.0)], [(2.0, 2.0), (18.0, 18.0)])
    )
    assert float(light) < 0.25 * float(heavy)  # the same windows, clipped far less
    assert 1.5 * light < both < 0.9 * heavy  # one range drawn per window: some of each


def test_the_command_line_passes_every_range_given(corpus, monkeypatch):
    seen = []

    def pairs(files, count, seed, codecs, sdrs=((1.0, 20.0),), **kwargs):
        seen.append(list(sdrs))
        raise SystemExit  # the ranges are all this test needs

    monkeypatch.setattr("declip.training.coded_mask.coded_pairs", pairs)
    two = ["--sdr", "12", "20", "--sdr", "1", "5"]
    for extra, expected in (([], [(1.0, 20.0)]), (two, [(12.0, 20.0), (1.0, 5.0)])):
        with pytest.raises(SystemExit):
            main(["--music", str(corpus), *extra])
        assert seen.pop() == expected


def test_fine_tuning_starts_from_the_weights_given(corpus, tmp_path, capsys):
    base, out = tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"
    save_mask_net(default_mask_net(), base)
    argv = ["--music", str(corpus), "--items", "4", "--valid-items", "2", "--steps", "2"]
    argv += ["--sdr", "15", "20", "--sdr", "1", "5"]  # two ranges, one drawn per pair
    main([*argv, "--init", str(base), "--lr", "1e-9", "--out", str(out)])
    assert "valid errors per clipped sample" in capsys.readouterr().out.splitlines()[1]  # the start, scored
    tuned, shipped = load_file(out), default_mask_net().state_dict()
    assert all(torch.allclose(tuned[k], shipped[k], atol=1e-6) for k in shipped)  # a tiny step: still the start
    assert any(not torch.equal(tuned[k], shipped[k]) for k in shipped)  # but trained


def first_network():
    torch.manual_seed(0)
    return ClipMaskNet().eval()


def test_a_grown_network_starts_with_the_output_of_the_one_it_grew_from_and_reads_further():
    first = first_network()
    grown = first.grown((64, 128))
    assert grown.dilations == (*DILATIONS, 64, 128) and grown.context == first.context + 192
    u = torch.from_numpy(rich_music(0.5, 1, 3).T.copy()).float()[None]
    assert torch.allclose(grown(u), first(u), atol=1e-6)  # the new residual branches start at zero
    torch.nn.init.normal_(grown.mix[-1].weight)  # once trained, a sample 150 away moves the output
    far = u.clone()
    far[..., 2000 + 150] += 0.5
    assert not torch.allclose(grown(far)[..., 2000], grown(u)[..., 2000])
    assert torch.equal(first(far)[..., 2000], first(u)[..., 2000])  # beyond the first network's 65
    assert default_mask_net().context == 513  # the shipped network: grown by 64, 128 and 256


def test_saved_weights_carry_their_shape(tmp_path):
    net = ClipMaskNet(16, (1, 3, 9))
    save_mask_net(net, tmp_path / "small.safetensors")
    loaded = load_mask_net(tmp_path / "small.safetensors")
    assert (loaded.width, loaded.dilations, loaded.context) == (16, (1, 3, 9), 15)
    u = torch.randn(1, 1, 300)
    assert torch.equal(loaded(u), net.eval()(u))
    save_file(first_network().state_dict(), tmp_path / "bare.safetensors")  # no metadata: the first shape
    assert torch.equal(load_mask_net(tmp_path / "bare.safetensors")(u), first_network()(u))


def test_growing_trains_the_grown_network_from_cached_pairs(corpus, tmp_path, monkeypatch):
    pairs, out, again = (tmp_path / name for name in ("pairs.safetensors", "grown.safetensors", "again.safetensors"))
    save_mask_net(first_network(), tmp_path / "first.safetensors")
    argv = ["--music", str(corpus), "--items", "4", "--valid-items", "2", "--steps", "2", "--margin", "64"]
    argv += ["--init", str(tmp_path / "first.safetensors"), "--grow", "64", "--pairs", str(pairs)]
    main([*argv, "--out", str(out)])
    assert pairs.exists() and load_mask_net(out).dilations == (*DILATIONS, 64)
    cached = load_file(pairs)
    assert cached["train_u"].shape[0] == 4 and cached["valid_m"].dtype == torch.bool

    def drawn(*args, **kwargs):
        raise AssertionError("the pairs were drawn again")

    monkeypatch.setattr("declip.training.coded_mask.coded_pairs", drawn)
    main([*argv, "--codecs", "opus", "mp3", "--out", str(again)])  # the cache is read (codecs in any order)
    with pytest.raises(SystemExit, match=r"pairs drawn with other settings \(items 4 \(asked: 999\)\)"):
        main([*argv, "--items", "999", "--out", str(again)])
    with pytest.raises(SystemExit, match="--grow appends blocks to a trained network"):
        main(["--music", str(corpus), "--grow", "64"])


def test_the_margin_keeps_the_crop_edges_out_of_the_loss():
    u, m = torch.rand(2, 64) * 2 - 1, torch.rand(2, 64) > 0.5
    nets = []
    for labels in (m, torch.cat([~m[:, :8], m[:, 8:56], ~m[:, 56:]], 1)):  # labels changed in the margins only
        valid = (u[:1], labels[:1])
        nets.append(train_mask_net((u, labels), valid, steps=1, batch=2, frames=48, margin=8, log_every=10))
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))
    changed = torch.cat([~m[:, :20], m[:, 20:]], 1)  # and inside the scored part: another network
    other = train_mask_net((u, changed), (u[:1], changed[:1]), steps=1, batch=2, frames=48, margin=8, log_every=10)
    assert not all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), other.parameters()))


def test_a_corpus_without_tracks_stops_with_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no train"):
        main(["--music", str(tmp_path)])
