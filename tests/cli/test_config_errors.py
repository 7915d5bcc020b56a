"""A rejected setting is one line naming the key, the value given and what was expected, for every field type."""

from pathlib import Path

import pytest

from declip.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/synthetic.yaml")

CASES = {
    "float": (["--model.lr=fast"], "model.lr: got 'fast', expected a number (float)"),
    "int": (["--trainer.max_steps=ten"], "trainer.max_steps: got 'ten', expected a whole number (int)"),
    "int in a data class": (
        ["--data.init_args.batch_size=sixty"],
        "data: declip.data.SyntheticDataModule init argument 'batch_size': got 'sixty', expected a whole number (int)",
    ),
    "class_path": (
        ["--model.backbone.class_path=declip.models.MLPX"],
        "model.backbone: unknown class_path 'declip.models.MLPX' (module 'declip.models' has no attribute 'MLPX'); "
        "did you mean declip.models.MLP?",
    ),
    "init argument name": (
        ["--model.backbone.init_args.hiddn=3"],
        "model.backbone: declip.models.MLP has no init argument 'hiddn'; it takes channels, frame, hidden, layers",
    ),
    "init argument value": (
        ["--model.backbone.init_args.hidden=big"],
        "model.backbone: declip.models.MLP init argument 'hidden': got 'big', expected a whole number (int)",
    ),
    "list item": (
        ["--data.init_args.input_sdr_range=[1, x]"],
        "data: declip.data.SyntheticDataModule init argument 'input_sdr_range': got 'x' in [1, 'x'], "
        "expected a number (float)",
    ),
    "list given a scalar": (
        ["--data.init_args.input_sdr_range=5"],
        "init argument 'input_sdr_range': got '5', expected a list",
    ),
    "loss in a list": (
        ["--model.losses=[{class_path: declip.losses.EILoss, init_args: {weight: heavy}}]"],
        "model.losses: declip.losses.EILoss init argument 'weight': got 'heavy'",
    ),
    "union of plain types": (
        ["--trainer.fast_dev_run=maybe"],
        "trainer.fast_dev_run: got 'maybe', expected a whole number (int) or true or false",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_rejected_setting_is_one_line_with_key_value_and_expectation(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    override, message = CASES[name]
    assert main(["fit", "--config", CONFIG, *override]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("declip: error: "), errors
    assert message in errors[0], errors[0]


def test_a_yaml_file_setting_names_its_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("model:\n  lr: fast\n")
    assert main(["fit", "--config", CONFIG, "--config", str(tmp_path / "mine.yaml")]) == 2
    assert capsys.readouterr().err.strip() == "declip: error: model.lr: got 'fast', expected a number (float)"
