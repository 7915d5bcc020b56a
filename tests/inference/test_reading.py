"""``read_blocks``: blocks side by side equal one stream, in every format; stopping early; a truncated file."""

import threading

import numpy as np
import pytest
import soundfile as sf

from declip.inference.reading import read_blocks


@pytest.fixture
def flac(tmp_path):
    rng = np.random.default_rng(0)
    audio = (0.5 * rng.standard_normal((10007, 2))).clip(-1, 1).astype(np.float32)
    path = tmp_path / "a.flac"
    sf.write(path, audio, 8000, subtype="PCM_24")
    return path


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_parallel_flac_blocks_equal_one_stream(flac, threads):
    one = list(read_blocks(flac, 1000, threads=1))
    many = list(read_blocks(flac, 1000, threads=threads))
    assert [len(b) for b in many] == [1000] * 10 + [7]
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.concatenate(many), sf.read(flac, dtype="float32", always_2d=True)[0])


@pytest.mark.parametrize(
    ("name", "subtype"), [("a.wav", "FLOAT"), ("a.wav", "PCM_24"), ("a.aiff", "PCM_16"), ("a.ogg", None)]
)
def test_every_format_gives_the_samples_of_one_read(tmp_path, name, subtype):
    # WAV and AIFF are read in parallel like FLAC; Ogg (no sample-exact seeks) as one stream
    audio = np.linspace(-1, 1, 2500, dtype=np.float32)[:, None]
    path = tmp_path / name
    sf.write(path, audio, 8000, subtype=subtype)
    blocks = list(read_blocks(path, 1000, threads=4))
    assert [len(b) for b in blocks] == [1000, 1000, 500]
    np.testing.assert_array_equal(np.concatenate(blocks), sf.read(path, dtype="float32", always_2d=True)[0])


def test_then_runs_on_each_block_with_its_first_frame(flac):
    got = list(read_blocks(flac, 1000, threads=3, then=lambda start, data: (start, len(data))))
    assert got == [(start, 1000) for start in range(0, 10000, 1000)] + [(10000, 7)]


@pytest.fixture
def opened(monkeypatch):
    """Every ``soundfile.SoundFile`` opened during the test, held here: only an explicit close closes one."""
    handles = []

    class Held(sf.SoundFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            handles.append(self)

    monkeypatch.setattr(sf, "SoundFile", Held)
    return handles


@pytest.mark.parametrize("threads", [1, 4])  # one stream; blocks side by side
def test_stopping_early_closes_every_handle_and_thread_after_the_right_blocks(flac, opened, threads):
    whole = sf.read(flac, dtype="float32", always_2d=True)[0]
    before = {thread.ident for thread in threading.enumerate()}
    blocks = read_blocks(flac, 100, threads=threads)
    got = [next(blocks) for _ in range(5)]
    reading = [handle for handle in opened if not handle.closed]
    assert reading  # what is checked below: the reader's open files
    blocks.close()
    assert all(handle.closed for handle in reading), "a handle on the file stayed open"
    assert [t.name for t in threading.enumerate() if t.ident not in before] == [], "a decoding thread still runs"
    assert next(blocks, None) is None
    for number, block in enumerate(got):
        np.testing.assert_array_equal(block, whole[number * 100 : (number + 1) * 100])


def test_a_truncated_flac_fails_instead_of_returning_fewer_samples(flac, tmp_path):
    cut = tmp_path / "cut.flac"
    data = flac.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises((RuntimeError, sf.LibsndfileError)):
        sum(len(b) for b in read_blocks(cut, 1000, threads=3))
