"""Export a checkpoint to the Hub layout and load it back by every local reference form."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

import declip
from declip.cli import main
from declip.errors import ConfigError
from declip.physics import Clipping
from declip.zoo.export import export_checkpoint
from declip.zoo.layout import sha256
from declip.zoo.load import load_model


def _outputs(model):
    torch.manual_seed(0)
    y = (torch.randn(2, 1, 3000) * 0.3).clamp(-0.2, 0.2)
    with torch.no_grad():
        return model.model(y, Clipping(torch.tensor(0.2)))


def test_save_export_load_gives_identical_outputs(checkpoint, tmp_path):
    metrics = {"held-out tracks": {"1": 1.5, "20": 4.25, "mean": 3.0}}
    folder = export_checkpoint(checkpoint, tmp_path / "tiny", metrics=metrics)
    from_ckpt, from_folder = load_model(checkpoint), declip.load_model(folder)
    assert torch.equal(_outputs(from_ckpt), _outputs(from_folder))
    assert from_folder.sample_rate == 16000 and from_folder.channels == 1 and from_folder.hop == from_ckpt.hop
    config = json.loads((folder / "config.json").read_text())
    assert config["regime"] == "mc+ei" and config["training"]["clip_levels"]["input_sdr_range"] == [1.0, 20.0]
    assert config["backbone"]["init_args"]["widths"] == [4, 8] and config["declip_version"] == declip.__version__
    assert config["params"] == sum(p.numel() for p in from_folder.model.parameters())
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: declip\n") and "- self-supervised" in card
    assert "| held-out tracks | 1.50 | – | – | – | – | – | 4.25 | 3.00 |" in card
    assert (folder / "training_config.yaml").read_text().startswith("seed_everything: 0")


def test_export_refuses_a_non_empty_folder_and_foreign_checkpoints(checkpoint, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        export_checkpoint(checkpoint, tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    foreign = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2)}, "hyper_parameters": {"hidden": 3}}, foreign)
    with pytest.raises(ConfigError, match="not a declip checkpoint"):
        export_checkpoint(foreign, tmp_path / "out")
    with pytest.raises(ConfigError, match="not a declip checkpoint"):
        load_model(foreign)
    assert not (tmp_path / "out").exists()


def test_zoo_names_load_shipped_weights_after_checking_their_hash(checkpoint, zoo, tmp_path):
    from declip.zoo import registry

    folder = export_checkpoint(checkpoint, registry.ZOO / "tiny")
    zoo(name="tiny", sha256=sha256(folder / "model.safetensors"))
    assert torch.equal(_outputs(load_model("tiny")), _outputs(load_model(checkpoint)))
    zoo(name="tampered", sha256="0" * 64)
    export_checkpoint(checkpoint, registry.ZOO / "tampered")
    with pytest.raises(ConfigError, match="sha256 differs"):
        load_model("tampered")
    with pytest.raises(ConfigError, match="unknown model 'nope'; zoo models: tampered, tiny"):
        load_model("nope")


def test_folders_without_safetensors_or_with_foreign_backbones_are_refused(checkpoint, tmp_path):
    folder = export_checkpoint(checkpoint, tmp_path / "m")
    (folder / "model.safetensors").unlink()
    torch.save({}, folder / "pytorch_model.bin")
    with pytest.raises(ConfigError, match="safetensors weights only"):
        load_model(folder)
    config = json.loads((folder / "config.json").read_text())
    config["backbone"]["class_path"] = "os.system"
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"w": torch.zeros(1)}, folder / "model.safetensors")
    with pytest.raises(ConfigError, match="not a declip model; refusing"):
        load_model(folder)


def test_the_default_model_ships_in_the_repository_and_restores_offline(tmp_path, capsys):
    from declip.zoo import DEFAULT_MODEL, entry

    item = entry(DEFAULT_MODEL)
    assert sha256(item.folder / "model.safetensors") == item.sha256  # what the loader checks
    model = load_model(DEFAULT_MODEL)
    assert model.info["regime"] in ("mc+ei", "mc+ei+reclip", "reclip") and model.sample_rate == 44100  # self-supervised
    t = torch.arange(22050) / 44100
    x = 0.8 * torch.sin(2 * torch.pi * 220 * t) * torch.sin(2 * torch.pi * 3 * t)
    import soundfile as sf

    sf.write(tmp_path / "in.wav", x.clamp(-0.3, 0.3).numpy(), 44100, subtype="FLOAT")
    assert main(["restore", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav")]) == 0  # no --model
    restored = torch.from_numpy(sf.read(tmp_path / "out.wav", dtype="float32")[0])
    y = x.clamp(-0.3, 0.3)
    assert (restored - x).norm() < (y - x).norm()  # closer to the unclipped signal than the input


def test_every_shipped_model_matches_its_registry_entry():
    from declip.zoo import entries, entry

    for name in entries():
        item = entry(name)
        if not (item.folder / "model.safetensors").is_file():
            continue
        assert sha256(item.folder / "model.safetensors") == item.sha256, name
        model = load_model(name, precision="fp32")
        assert model.info["regime"] == item.regime and model.info["params"] == item.params, name
        assert (model.sample_rate, model.channels) == (item.sample_rate, item.channels), name
        training = yaml.safe_load((item.folder / "training_config.yaml").read_text())
        root = training["data"]["init_args"]["corpus"]["init_args"]["root"]
        assert not Path(root).is_absolute() and training["trainer"]["default_root_dir"] is None, name
