"""``declip fit|validate|test`` through the real LightningCLI, in-process and as a subprocess."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from declip.cli import main
from declip.training import DeclipModule

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("synthetic*.yaml"))
TINY = [
    "--model.backbone.init_args.hidden=32",
    "--data.init_args.val_size=8",
    "--data.init_args.test_size=8",
    "--data.init_args.batch_size=4",
]


def declip(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "declip", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_fast_dev_run_through_the_cli(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", str(config), "--trainer.fast_dev_run=2", *TINY]) == 0


def test_print_config_shows_every_knob(tmp_path):
    result = declip("fit", "--config", str(ROOT / "configs/synthetic.yaml"), "--print_config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    losses = config["model"]["losses"]
    assert [loss["class_path"] for loss in losses] == ["declip.losses.MCLoss", "declip.losses.EILoss"]
    ei_knobs = {"weight", "g_min", "g_max", "distribution", "sign_flip", "detach_target", "clipped_only"}
    assert set(losses[1]["init_args"]) == ei_knobs
    assert config["model"]["backbone"]["init_args"]["frame"] == 512
    assert config["data"]["init_args"]["input_sdr_range"] == [1.0, 20.0]


def test_fit_then_test_and_reload_from_the_cli_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = str(ROOT / "configs/synthetic.yaml")
    args = ["--config", config, *TINY, "--trainer.max_steps=4", "--trainer.val_check_interval=2"]
    assert main(["fit", *args, "--trainer.default_root_dir", str(tmp_path)]) == 0
    checkpoints = sorted(tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt"))
    assert checkpoints, "fit wrote no checkpoint"
    last = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    module = DeclipModule.load_from_checkpoint(last)
    assert module.regime == "mc+ei"
    assert type(module.model.backbone).__name__ == "MLP" and module.model.backbone.net[0].out_features == 32
    state = torch.load(last, weights_only=False)["state_dict"]
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())
    assert main(["test", *args, "--ckpt_path", str(last)]) == 0
    assert main(["validate", *args, "--ckpt_path", str(last)]) == 0
    assert main(["predict", *args, "--ckpt_path", str(last)]) == 0


@pytest.mark.parametrize(
    "override, message",
    [
        (["--model.backbone=declip.models.NoSuchNet"], "NoSuchNet"),
        (["--data.init_args.threshold_range=[-0.1, 0.5]"], "threshold_range must be [low, high] with 0 < low"),
        (["--data.init_args.input_sdr_range=[-3, 5]"], "input_sdr_range must be [low, high] with 0 < low"),
        (
            [
                "--model.losses+=declip.losses.EILoss",
                "--model.losses.init_args.g_min=3",
                "--model.losses.init_args.g_max=1",
            ],
            "g_min <= g_max",
        ),
    ],
)
def test_bad_config_fails_with_one_clear_line(override, message, tmp_path):
    result = declip("fit", "--config", str(ROOT / "configs/synthetic-mc.yaml"), *override, cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("declip: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


TINY_BACKBONE = {  # small settings of each backbone a music config uses
    "declip.models.UNet": ["--model.backbone.init_args.widths=[4, 8]"],
    "declip.models.UnfoldedSPADE": [
        "--model.backbone.init_args.window=256",
        "--model.backbone.init_args.hop=64",
        "--model.backbone.init_args.iterations=2",
    ],
}


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("music*.yaml")), ids=lambda p: p.stem)
def test_music_configs_run_on_a_musdb_tree(config, musdb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backbone = yaml.safe_load(config.read_text())["model"]["backbone"]["class_path"]
    tiny = TINY_BACKBONE[backbone] + [
        f"--data.init_args.corpus.init_args.root={musdb}",
        "--data.init_args.corpus.init_args.valid_fraction=0.25",
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        "--trainer.fast_dev_run=2",
        "--model.init_weights=null",  # a fine-tuning config starts from a shipped model of the full size
    ]
    assert main(["fit", "--config", str(config), *tiny]) == 0


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("music*.yaml")), ids=lambda p: p.stem)
def test_music_configs_keep_the_latest_step_in_last_ckpt(config):
    """``last.ckpt`` (what ``--ckpt_path`` resumes from) comes from the unmonitored callback, so it
    follows the latest step, not the best validation score."""
    callbacks = yaml.safe_load(config.read_text())["trainer"]["callbacks"]
    savers = [c["init_args"] for c in callbacks if c["init_args"].get("save_last")]
    assert len(savers) == 1 and "monitor" not in savers[0]


def test_last_ckpt_is_the_final_step_of_a_music_run(musdb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [
        "--config", str(ROOT / "configs/music-reclip-only.yaml"),
        "--model.backbone.init_args.widths=[4, 8]",
        f"--data.init_args.corpus.init_args.root={musdb}",
        "--data.init_args.corpus.init_args.valid_fraction=0.25",
        "--data.init_args.batch_size=2", "--data.init_args.num_workers=0",
        "--data.init_args.val_items=4", "--data.init_args.train_items=64",
        "--trainer.max_steps=6", "--trainer.val_check_interval=2",
        "--trainer.default_root_dir", str(tmp_path),
    ]  # fmt: skip
    assert main(["fit", *args]) == 0
    folder = tmp_path / "lightning_logs/version_0/checkpoints"
    assert torch.load(folder / "last.ckpt", weights_only=False)["global_step"] == 6
    assert (folder / "latest-step6.ckpt").is_file()


def test_the_coded_config_fine_tunes_from_init_weights_and_resumes_from_its_checkpoint(musdb, tmp_path, monkeypatch):
    """``init_weights`` starts ``fit`` from a model's weights; ``--ckpt_path`` then wins over it. At lr 0 the
    weights a run ends with are the ones it started from."""
    monkeypatch.chdir(tmp_path)

    def fit(root: str, *extra: str) -> dict:
        args = [
            "--config", str(ROOT / "configs/music-reclip-coded.yaml"),
            "--model.backbone.init_args.widths=[4, 8]",
            f"--data.init_args.corpus.init_args.root={musdb}",
            "--data.init_args.corpus.init_args.valid_fraction=0.25",
            "--data.init_args.batch_size=2", "--data.init_args.num_workers=0",
            "--data.init_args.val_items=2", "--data.init_args.train_items=16",
            "--trainer.val_check_interval=2", "--trainer.default_root_dir", str(tmp_path / root), *extra,
        ]  # fmt: skip
        assert main(["fit", *args]) == 0
        found = sorted((tmp_path / root).glob("lightning_logs/version_*/checkpoints/last.ckpt"))
        return torch.load(found[-1], weights_only=False)

    def weights(checkpoint: dict) -> list[torch.Tensor]:
        return [v for k, v in sorted(checkpoint["state_dict"].items()) if k.startswith("model.")]

    first = fit("a", "--model.init_weights=null", "--trainer.max_steps=2")
    other = fit("b", "--model.init_weights=null", "--trainer.max_steps=2", "--seed_everything=1")
    start_a = str(tmp_path / "a/lightning_logs/version_0/checkpoints/last.ckpt")
    tuned = fit("c", f"--model.init_weights={start_a}", "--model.lr=0", "--trainer.max_steps=2")
    assert all(torch.equal(u, v) for u, v in zip(weights(tuned), weights(first)))
    assert not all(torch.equal(u, v) for u, v in zip(weights(other), weights(first)))
    start_b = str(tmp_path / "b/lightning_logs/version_0/checkpoints/last.ckpt")
    resumed = fit("c", f"--model.init_weights={start_b}", "--model.lr=0", "--trainer.max_steps=4", "--ckpt_path=last")
    assert resumed["global_step"] == 4
    assert all(torch.equal(u, v) for u, v in zip(weights(resumed), weights(first)))  # the checkpoint's, not b's


def test_an_anchor_without_a_base_model_fails_in_fit_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "declip", "fit", "--config", str(ROOT / "configs/synthetic.yaml"),
         "--model.losses=declip.losses.ReclipLoss", "--model.losses.init_args.anchor=1.0",
         "--model.backbone.init_args.hidden=32", "--trainer.fast_dev_run=1", "--data.init_args.batch_size=4"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode != 0
    assert "needs a base model to anchor to" in result.stderr and "Traceback" not in result.stderr, result.stderr
