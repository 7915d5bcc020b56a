"""Clip, then code: training segments coded by real encoders (LAME, libopus, FFmpeg's AAC) and measured under a band."""

import numpy as np
import pytest
import torch

from declip.data import AudioDataModule, MusdbCorpus
from declip.data.codecs import ENCODER_GAINS, code
from declip.data.coded_segments import CodedClipping, CodedSegments
from declip.errors import ConfigError
from declip.physics import threshold_for_sdr
from tests.conftest import music

RATE, MARGIN = 16000, 1024


def clipped_item(level_db: float = 5.0) -> dict[str, torch.Tensor]:
    x = torch.from_numpy(music(0.5, RATE, 1, 3).T.copy())
    theta = threshold_for_sdr(x[None], level_db).reshape(1, 1)
    return {"y": torch.clamp(x, -theta, theta), "x": x, "high": theta, "low": -theta, "input_sdr": torch.tensor(5.0)}


@pytest.mark.parametrize("codec,kbps", [("mp3", 128), ("opus", 96), ("aac", 64)])
def test_a_coded_item_is_the_decoded_segment_clipped_at_the_band_edge(codec, kbps):
    item = clipped_item()
    coding = CodedClipping({codec: kbps}, band_range=(0.03, 0.03), margin=MARGIN)
    out = coding.apply(item, RATE, torch.Generator().manual_seed(0))
    cut = slice(MARGIN, item["y"].shape[1] - MARGIN)
    edge = 0.97 * ENCODER_GAINS[codec] * item["high"]
    assert torch.allclose(out["high"], edge) and torch.allclose(out["low"], -edge)
    assert out["y"].shape == (1, item["y"].shape[1] - 2 * MARGIN)
    decoded = torch.from_numpy(code(item["y"].T.numpy(), RATE, codec, kbps).T)[:, cut]
    reliable = (decoded < edge) & (decoded > -edge)
    assert 0.2 < reliable.float().mean() < 0.99  # some samples fell in the band, some did not
    assert torch.equal(out["y"][reliable], decoded[reliable])  # inside the edge: the decoded samples, exact
    assert torch.equal(out["y"][~reliable].abs(), edge.expand_as(decoded)[~reliable])  # in the band: at the edge
    uncoded = torch.clamp(item["y"][:, cut], -edge, edge)
    assert (out["y"] - uncoded).abs().max() > 1e-3  # the codec changed the measurement
    assert torch.allclose(out["x"], ENCODER_GAINS[codec] * item["x"][:, cut])  # the reference at the encoder's gain


def test_codecs_and_bands_are_drawn_per_item_and_repeat():
    coding = CodedClipping({"mp3": 128, "opus": 96}, band_range=(0.01, 0.1), margin=MARGIN)
    segments = CodedSegments([clipped_item(v) for v in (1.0, 3.0, 5.0, 10.0, 20.0, 2.0)], coding, RATE, 0, "train")
    items = [segments[i] for i in range(len(segments))]
    ratios = [float(item["high"] / clipped_item(v)["high"]) for item, v in zip(items, (1, 3, 5, 10, 20, 2))]
    assert all(0.9 * 0.95 - 1e-6 <= r <= 0.99 + 1e-6 for r in ratios)
    assert len({round(r, 6) for r in ratios}) == len(ratios)  # a band of its own per item
    assert torch.equal(segments[3]["y"], items[3]["y"])  # the same draw on every read


@pytest.mark.parametrize("codecs,band", [({"wma": 128}, (0.01, 0.1)), ({}, (0.01, 0.1)), ({"mp3": 128}, (0.2, 0.1))])
def test_bad_coding_settings_fail_with_one_line(codecs, band):
    with pytest.raises(ConfigError):
        CodedClipping(codecs, band)


def test_the_data_module_codes_training_and_validation_segments(musdb):
    kwargs = dict(
        corpus=MusdbCorpus(str(musdb), source="mixture", valid_fraction=0.25), sample_rate=RATE,
        segment_seconds=0.25, train_items=4, val_items=7, clean_targets=False, batch_size=2,
    )  # fmt: skip
    coded = AudioDataModule(**kwargs, codecs={"mp3": 128, "opus": 96})
    coded.setup()
    train, valid = coded._dataset("train", 4, False), coded._dataset("valid", 7, True)
    assert isinstance(train, CodedSegments) and isinstance(valid, CodedSegments)
    for item in [train[i] for i in range(4)] + [valid[i] for i in range(7)]:
        assert item["y"].shape == (1, 4000)
        assert float(item["y"].abs().max()) <= float(item["high"]) + 1e-7
    assert "x" not in train[0] and "x" in valid[0]  # self-supervised training; references to score on
    plain = AudioDataModule(**kwargs)
    plain.setup()
    assert not isinstance(plain._dataset("train", 4, False), CodedSegments)
    batch = next(iter(coded.train_dataloader()))
    assert batch["y"].shape == (2, 1, 4000) and not np.isnan(batch["y"].numpy()).any()
