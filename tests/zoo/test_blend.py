"""``declip zoo blend``: two model folders as one Blend model folder, loaded and restored like any other."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from declip.cli import main
from declip.errors import ConfigError
from declip.models.reach import reach
from declip.physics import Clipping
from declip.zoo.blend import blend_folders
from declip.zoo.export import export_checkpoint
from declip.zoo.load import load_model


@pytest.fixture(scope="module")
def pair(checkpoint, tmp_path_factory):
    """Two folders of one architecture with different weights (the second's halved)."""
    root = tmp_path_factory.mktemp("pair")
    first, second = export_checkpoint(checkpoint, root / "first"), export_checkpoint(checkpoint, root / "second")
    save_file({k: v / 2 for k, v in load_file(second / "model.safetensors").items()}, second / "model.safetensors")
    return first, second


def test_blend_writes_a_folder_that_loads_and_restores(pair, tmp_path, capsys):
    first, second = pair
    out = tmp_path / "both"
    assert main(["zoo", "blend", str(first), str(second), str(out), "--g", "1.5", "--span", "801"]) == 0
    assert "blended" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"]["class_path"] == "declip.models.blend.Blend"
    assert config["backbone"]["init_args"]["g"] == 1.5 and config["backbone"]["init_args"]["span"] == 801
    assert config["blend_of"] == {"primary": str(first), "secondary": str(second)}
    model, alone = load_model(out, precision="fp32"), load_model(first, precision="fp32")
    assert config["params"] == 2 * sum(p.numel() for p in alone.model.parameters())
    backbone = model.model.backbone
    reaches = [reach(getattr(backbone, role), 1) for role in ("primary", "secondary")]
    assert reaches[0] + alone.hop == alone.context  # the primary is the first folder's model, reaching as far
    assert model.context == max(reaches) + 801 // 2 + 1 + model.hop  # the farther reach plus half the span
    for role, folder in (("primary", first), ("secondary", second)):  # each folder's weights in its place
        shipped = load_file(folder / "model.safetensors")
        mine = getattr(backbone, role).state_dict()
        assert shipped.keys() == {f"backbone.{k}" for k in mine} and all(
            torch.equal(mine[k], shipped[f"backbone.{k}"]) for k in mine
        )
    torch.manual_seed(0)
    y = (torch.randn(1, 1, 4000) * 0.3).clamp(-0.2, 0.2)
    physics = Clipping(torch.tensor(0.2))
    with torch.no_grad():
        both = model.model(y, physics)
    assert torch.equal(both, physics.project(both, y)) and not torch.equal(both, y)  # consistent, and it restores
    assert (out / "training_config.yaml").read_text() == (first / "training_config.yaml").read_text()
    assert "declip zoo blend" in (out / "README.md").read_text()


def test_blend_refuses_bad_settings_and_foreign_backbones_inside(pair, tmp_path, capsys):
    first, second = pair
    assert main(["zoo", "blend", str(first), str(second), str(tmp_path / "x"), "--g", "1"]) == 2
    err = capsys.readouterr().err
    assert "Blend g must be above 1" in err and not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="no model.safetensors there"):
        blend_folders(first, tmp_path / "nowhere", tmp_path / "y")
    out = blend_folders(first, second, tmp_path / "z")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        blend_folders(first, second, out)
    config = json.loads((out / "config.json").read_text())
    for payload in ("builtins.eval", "declip.models.blend.build_backbone"):  # nested in Blend, or a declip function
        config["backbone"]["init_args"]["secondary"]["class_path"] = payload
        (out / "config.json").write_text(json.dumps(config))
        with pytest.raises(ConfigError, match="not a declip (model|backbone class)"):
            load_model(out)
    top = {**config, "backbone": {"class_path": "declip.models.blend.build_backbone", "init_args": {"config": {}}}}
    (out / "config.json").write_text(json.dumps(top))
    with pytest.raises(ConfigError, match="is not a declip backbone class; refusing to build it"):
        load_model(out)
