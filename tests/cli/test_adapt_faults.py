"""``declip adapt`` and ``restore --adapt`` faults: settings of the wrong type, Ctrl-C before any adapted state."""

import pytest

from declip.cli import main
from declip.training.adapt import BestState
from tests.conftest import clipped_folder


@pytest.mark.parametrize(
    "yaml, message",
    [
        ("steps: five\n", "adaptation setting steps: got 'five', expected a whole number of steps"),
        ("lr: fast\n", "adaptation setting lr: got 'fast', expected a number (float)"),
        ("batch_size: 2.5\n", "adaptation setting batch_size: got 2.5, expected a whole number (int)"),
        ("losses: reclip\n", "adaptation setting losses: got 'reclip', expected a list"),
    ],
)
def test_a_setting_of_the_wrong_type_is_one_line(base, tmp_path, capsys, yaml, message):
    config = tmp_path / "adapt.yaml"
    config.write_text(yaml)
    folder = clipped_folder(tmp_path / "r", files=1)
    assert main(["adapt", str(folder), "--model", str(base), "-o", str(tmp_path / "m"), "--config", str(config)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"declip: error: {config}: {message}"), errors
    assert not (tmp_path / "m").exists()


@pytest.fixture
def ctrl_c_at_step_7(monkeypatch):
    """Ctrl-C at step 7, inside the warm-up (the moving average keeps no state before step 10)."""
    original = BestState.on_train_batch_end

    def interrupted(self, trainer, pl_module, outputs, batch, batch_idx):
        original(self, trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == 7:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread; Lightning handles it

    monkeypatch.setattr(BestState, "on_train_batch_end", interrupted)


def test_adapt_stopped_before_any_adapted_state_writes_nothing_and_says_so(base, tmp_path, capsys, ctrl_c_at_step_7):
    folder = clipped_folder(tmp_path / "r", files=1)
    out = tmp_path / "adapted"
    assert main(["adapt", str(folder), "--model", str(base), "-o", str(out), "--steps", "100"]) == 1
    captured = capsys.readouterr()
    assert "stopped by Ctrl-C after 7 step(s), before any adapted state was kept" in captured.err
    assert f"nothing written to {out}" in captured.err
    assert "inf" not in captured.out + captured.err and not out.exists()


def test_restore_adapt_stopped_in_warm_up_says_the_base_model_restored_it(base, tmp_path, capsys, ctrl_c_at_step_7):
    folder = clipped_folder(tmp_path / "r", files=2)
    out = tmp_path / "out"
    assert main(["restore", str(folder), "-o", str(out), "--model", str(base), "--adapt", "100"]) == 1
    captured = capsys.readouterr()
    assert "not adapted: stopped by Ctrl-C after 7 step(s), base model used" in captured.out
    assert (out / "take0.wav").exists() and not (out / "take1.wav").exists()
    assert "take1.wav: not restored: stopped by Ctrl-C" in captured.err
