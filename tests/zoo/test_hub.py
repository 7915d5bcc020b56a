"""The zoo against a Hub-compatible server on loopback, with the real huggingface_hub client."""

import json
import subprocess
import sys

import lightning as L
import pytest
import torch
from huggingface_hub import constants

from declip.cli import main
from declip.data import SyntheticDataModule
from declip.errors import ConfigError
from declip.losses import SupervisedLoss
from declip.models import UNet
from declip.physics import Clipping
from declip.training import DeclipModule
from declip.zoo import PushToHub
from declip.zoo.export import export_checkpoint
from declip.zoo.layout import sha256
from declip.zoo.load import load_model


def _outputs(model):
    torch.manual_seed(0)
    y = (torch.randn(1, 1, 2000) * 0.3).clamp(-0.2, 0.2)
    with torch.no_grad():
        return model.model(y, Clipping(torch.tensor(0.2)))


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def two_versions(checkpoint, hub_server, tmp_path):
    """A Hub repo with two commits of the model (the second with changed weights) and a tag v1."""
    old = export_checkpoint(checkpoint, tmp_path / "old")
    ck = torch.load(checkpoint, weights_only=False)
    ck["state_dict"] = {k: v + 0.01 for k, v in ck["state_dict"].items()}
    torch.save(ck, tmp_path / "new.ckpt")
    new = export_checkpoint(tmp_path / "new.ckpt", tmp_path / "new")
    repo_id = hub_server.new_repo_id("tiny")
    sha_old, sha_new = hub_server.create_repo(repo_id, [_files(old), _files(new)], tags={"v1": 0})
    return repo_id, sha_old, sha_new, old, new


def test_download_pins_revisions_then_works_offline_from_the_cache(hf_env, hub_server, two_versions, monkeypatch):
    repo_id, sha_old, sha_new, old, new = two_versions
    assert torch.equal(_outputs(load_model(repo_id)), _outputs(load_model(new)))
    for revision in (sha_old, "v1"):
        assert torch.equal(_outputs(load_model(f"{repo_id}@{revision}")), _outputs(load_model(old)))
    assert not torch.equal(_outputs(load_model(old)), _outputs(load_model(new)))
    served = len(hub_server.requests)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert torch.equal(_outputs(load_model(f"{repo_id}@{sha_old}")), _outputs(load_model(old)))
    assert len(hub_server.requests) == served  # the cache answered
    with pytest.raises(ConfigError, match="cannot reach the Hub .* HF_HUB_OFFLINE=1"):
        load_model(f"{repo_id}@main-not-cached")
    # A fresh process with HF_HUB_OFFLINE=1 in its environment: the CLI resolves from the cache.
    env = hf_env.subprocess_env(HF_HUB_OFFLINE="1")
    run = subprocess.run([sys.executable, "-m", "declip", "zoo", "download", f"{repo_id}@{sha_old}"],
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith(sha_old) and len(hub_server.requests) == served


def test_zoo_names_download_their_pinned_revision_and_check_the_hash(hf_env, two_versions, zoo):
    repo_id, sha_old, _, old, _ = two_versions
    zoo(name="pinned", repo_id=repo_id, revision=sha_old, sha256=sha256(old / "model.safetensors"))
    assert torch.equal(_outputs(load_model("pinned")), _outputs(load_model(old)))
    zoo(name="wrong", repo_id=repo_id, revision=sha_old, sha256="f" * 64)
    with pytest.raises(ConfigError, match="sha256 differs"):
        load_model("wrong")


def test_hub_refusals_name_the_problem(hf_env, hub_server, checkpoint, tmp_path):
    pickled = hub_server.new_repo_id("pickled")
    folder = export_checkpoint(checkpoint, tmp_path / "m")
    hub_server.create_repo(pickled, [{"config.json": (folder / "config.json").read_bytes(), "pytorch_model.bin": b"x"}])
    with pytest.raises(ConfigError, match="has no model.safetensors; declip loads safetensors weights only"):
        load_model(pickled)
    with pytest.raises(ConfigError, match="no such model repository"):
        load_model("declip-test/absent")
    with pytest.raises(ConfigError, match="no such revision"):
        load_model(f"{pickled}@no-such-branch")


def test_push_commits_exactly_the_exported_files(recording_hub, checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    assert main(["zoo", "push", str(checkpoint), "--repo-id", "declip-test/pushed", "--revision", "dev"]) == 0
    (commit,) = recording_hub.commits
    assert commit.repo_id == "declip-test/pushed" and commit.revision == "dev"
    assert sorted(commit.files) == ["README.md", "config.json", "model.safetensors", "training_config.yaml"]
    config = json.loads(commit.files["config.json"])
    assert config["regime"] == "mc+ei" and config["sample_rate"] == 16000
    (metadata,) = recording_hub.validated_metadata  # the client has the card's metadata checked first
    assert metadata["library_name"] == "declip" and "mc+ei" in metadata["tags"]
    assert (
        f"commit {commit.oid}" in capsys.readouterr().out
        and recording_hub.head("declip-test/pushed", "dev") == commit.oid
    )
    assert torch.equal(_outputs(load_model("declip-test/pushed@dev")), _outputs(load_model(checkpoint)))


def test_callback_pushes_the_checkpoint_at_the_end_of_fit_on_rank_zero(recording_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    module = DeclipModule(UNet(channels=1, widths=(4, 8)), SupervisedLoss(), sample_rate=16000)
    push = PushToHub("declip-test/from-fit")
    trainer = L.Trainer(max_steps=2, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        limit_val_batches=0, enable_model_summary=False, callbacks=[push])  # fmt: skip
    trainer.fit(module, SyntheticDataModule(length=256, batch_size=4))
    (commit,) = recording_hub.commits
    assert commit.oid == push.commit and "model.safetensors" in commit.files
    assert json.loads(commit.files["config.json"])["regime"] == "supervised"
