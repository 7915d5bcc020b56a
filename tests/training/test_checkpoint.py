"""Reading a checkpoint never runs code from it: a crafted ``.ckpt`` (the ``crafted`` fixture) is refused with one
line by the reader and the Python API (by every command: tests/cli/test_checkpoint_refusal.py)."""

import pytest

from declip.errors import ConfigError
from declip.training.checkpoint import load_checkpoint


def test_reader_refuses_and_names_the_global(crafted):
    path, marker = crafted
    with pytest.raises(ConfigError, match=r"crafted.ckpt: refused: it holds pickled Python objects \(posix.system\)"):
        load_checkpoint(path)
    assert not marker.exists()


def test_python_api_refuses(crafted):
    from declip.zoo import load_model
    from declip.zoo.export import export_checkpoint

    path, marker = crafted
    with pytest.raises(ConfigError, match="refused"):
        load_model(path)
    with pytest.raises(ConfigError, match="refused"):
        export_checkpoint(path, path.parent / "out")
    assert not marker.exists()


def test_random_bytes_are_one_line_without_torch_advice(tmp_path):
    path = tmp_path / "random.ckpt"
    path.write_bytes(np_bytes := bytes(range(256)) * 20)
    assert len(np_bytes) == 5120
    with pytest.raises(ConfigError) as error:
        load_checkpoint(path)
    text = str(error.value)
    assert text.startswith(f"{path}: not a declip checkpoint (") and "\n" not in text
    assert "weights_only" not in text
