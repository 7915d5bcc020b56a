"""Self-supervised adaptation on clipped recordings: ``declip adapt`` and ``declip restore --adapt``."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from declip.cli import main
from declip.data.recordings import ClippedRecordings, scan_recordings
from declip.inference import LoadedModel
from declip.losses import MCLoss, ReclipLoss
from declip.physics import Clipping
from declip.training.adapt import AdaptSettings, adapt
from declip.zoo import load_model
from tests.conftest import clipped_folder, music

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000


def loss_on(model: LoadedModel, folder: Path, loss) -> float:
    """``loss`` of ``model`` on 32 fixed segments of the clipped recordings in ``folder`` (fixed draws)."""
    recordings, _ = scan_recordings([folder])
    data = ClippedRecordings(recordings, 4096, RATE, 1, items=32, seed=123)
    batch = {k: torch.stack([data[i][k] for i in range(32)]) for k in ("y", "high", "low")}
    physics = Clipping(batch["high"], batch["low"])
    torch.manual_seed(7)  # the same random gains for every model scored
    with torch.no_grad():
        return float(loss(model.model(batch["y"], physics), batch["y"], physics, model.model))


MC_EI = [
    {"class_path": "declip.losses.MCLoss"},
    {"class_path": "declip.losses.EILoss", "init_args": {"weight": 10.0, "g_min": 0.5, "g_max": 2.0}},
]


@pytest.mark.parametrize("losses", ["default", "mc+ei"])
def test_adapt_command_improves_its_objective_and_writes_a_loadable_model(base, tmp_path, capsys, losses):
    folder = clipped_folder(tmp_path / "recordings")
    out = tmp_path / "adapted"
    args = ["adapt", str(folder), "--model", str(base), "-o", str(out), "--steps", "40"]
    fast = tmp_path / "fast.yaml"  # configs/adapt.yaml with a rate for an untrained toy model
    settings = yaml.safe_load((ROOT / "configs/adapt.yaml").read_text())
    fast.write_text(yaml.safe_dump({**settings, "lr": 1e-3, **({"losses": MC_EI} if losses == "mc+ei" else {})}))
    assert main([*args, "--config", str(fast)]) == 0
    assert "compare with the base model" in capsys.readouterr().err  # the measured caveat reaches the user
    before, after = load_model(base, precision="fp32"), load_model(out, precision="fp32")
    changed = [
        not torch.equal(a, b) for a, b in zip(before.model.state_dict().values(), after.model.state_dict().values())
    ]
    assert any(changed)
    # the objective it was given improves on the recordings: MC with MC + EI, re-clipping by default
    objective = MCLoss() if losses == "mc+ei" else ReclipLoss(g_min=1.0, g_max=8.0)
    assert loss_on(after, folder, objective) < 0.8 * loss_on(before, folder, objective)
    config = json.loads((out / "config.json").read_text())
    assert config["adapted"]["from"] == str(base) and config["adapted"]["steps"] == 40
    assert sorted(Path(f).name for f in config["adapted"]["files"]) == ["take0.wav", "take1.wav"]
    assert config["metrics"] == {}  # the base model's scores do not carry over
    card = (out / "README.md").read_text()
    assert "## Adaptation" in card and "- adapted" in card
    assert main(["restore", str(folder / "take0.wav"), "-o", str(tmp_path / "r.wav"), "--model", str(out)]) == 0
    assert main(args) == 2  # the output exists: not overwritten without --overwrite


def test_restore_adapt_fine_tunes_on_the_file_itself(base, tmp_path, capsys):
    folder = clipped_folder(tmp_path / "one", files=1)
    out = tmp_path / "out.wav"
    assert main(["restore", str(folder / "take0.wav"), "-o", str(out), "--model", str(base), "--adapt", "5"]) == 0
    assert "adapted 5 steps" in capsys.readouterr().out
    y, restored = sf.read(folder / "take0.wav", dtype="float32")[0], sf.read(out, dtype="float32")[0]
    reliable = (y < y.max(0) - 1e-6) & (y > y.min(0) + 1e-6)
    assert np.array_equal(restored[reliable], y[reliable])


def test_restore_adapt_detects_the_clip_level_once_per_file(base, tmp_path, capsys, plateau_detections):
    """Adapting on a file finds its plateaus; restoring it takes them instead of reading the file for them again."""
    folder = clipped_folder(tmp_path / "one", files=1)
    out = tmp_path / "out.wav"
    assert main(["restore", str(folder / "take0.wav"), "-o", str(out), "--model", str(base), "--adapt", "2"]) == 0
    assert "adapted 2 steps" in capsys.readouterr().out
    assert len(plateau_detections) == 1


def test_bad_inputs_give_clear_messages(base, tmp_path, capsys):
    clean = tmp_path / "clean"
    clean.mkdir()
    sf.write(clean / "a.wav", 0.5 * music(1.0, RATE, 1, 3) / np.abs(music(1.0, RATE, 1, 3)).max(), RATE)
    assert main(["adapt", str(clean), "--model", str(base), "-o", str(tmp_path / "m1"), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "no clipped samples in any of the 1 file(s)" in err and "lossy" not in err  # a WAV: no talk of codecs
    restore = ["restore", str(clean / "a.wav"), "-o", str(tmp_path / "a.wav"), "--model", str(base), "--adapt", "2"]
    assert main(restore) == 0
    assert "not adapted: no clipping found; " in capsys.readouterr().out

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.wav").write_bytes(b"RIFF not really")
    (broken / "empty.flac").write_bytes(b"")
    assert main(["adapt", str(broken), "--model", str(base), "-o", str(tmp_path / "m2"), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "skipping" in err and "x.wav" in err and "no readable clipped recording" in err

    supervised = tmp_path / "supervised.yaml"
    supervised.write_text("losses:\n  - class_path: declip.losses.SupervisedLoss\n")
    folder = clipped_folder(tmp_path / "ok", files=1)
    argv = ["adapt", str(folder), "--model", str(base), "-o", str(tmp_path / "m3"), "--config", str(supervised)]
    assert main(argv) == 2
    assert "supervised loss needs the clean signal" in capsys.readouterr().err
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m3").exists()

    typo = tmp_path / "typo.yaml"
    typo.write_text("stepz: 3\n")
    assert main(["adapt", str(folder), "--model", str(base), "-o", str(tmp_path / "m4"), "--config", str(typo)]) == 2
    assert "unknown adaptation setting(s) ['stepz']" in capsys.readouterr().err


def test_restore_adapt_refuses_an_existing_output_before_adapting(base, tmp_path, capsys):
    folder = clipped_folder(tmp_path / "one", files=1)
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")
    assert main(["restore", str(folder / "take0.wav"), "-o", str(out), "--model", str(base), "--adapt", "5"]) == 1
    captured = capsys.readouterr()
    assert "exists; pass --overwrite" in captured.err and "adapted" not in captured.out
    assert out.read_bytes() == b"keep me"


def test_restore_adapt_anchors_to_the_model_it_adapts(base, tmp_path, monkeypatch):
    """Per-file adaptation uses the anchored re-clipping measured on SQAM; folder adaptation does not."""
    import declip.training.adapt as adapt_module

    seen = []

    def recording(model, recordings, settings, **kwargs):
        seen.append(settings)
        return adapt(model, recordings, settings, **kwargs)

    monkeypatch.setattr(adapt_module, "adapt", recording)
    folder = clipped_folder(tmp_path / "one", files=1)
    assert (
        main(
            ["restore", str(folder / "take0.wav"), "-o", str(tmp_path / "o.wav"), "--model", str(base), "--adapt", "3"]
        )
        == 0
    )
    (settings,) = seen
    assert settings.steps == 3 and [loss["init_args"].get("anchor") for loss in settings.losses] == [1.0]
    assert all("anchor" not in loss.get("init_args", {}) for loss in AdaptSettings().losses)
