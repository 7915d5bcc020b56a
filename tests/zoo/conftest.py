import json

import lightning as L
import pytest

from declip.data import SyntheticDataModule
from declip.losses import EILoss, MCLoss
from declip.models import UNet
from declip.training import DeclipModule
from declip.zoo import registry


@pytest.fixture(scope="package")
def checkpoint(tmp_path_factory):
    """A tiny MC+EI model trained for three steps, saved where LightningCLI would put it."""
    root = tmp_path_factory.mktemp("run")
    module = DeclipModule(
        UNet(channels=1, widths=(4, 8), stem_stride=2), [MCLoss(), EILoss(weight=2.0)], sample_rate=16000
    )
    trainer = L.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        limit_val_batches=0, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, SyntheticDataModule(length=256, batch_size=4))
    (root / "checkpoints").mkdir()
    trainer.save_checkpoint(root / "checkpoints" / "last.ckpt")
    (root / "config.yaml").write_text("seed_everything: 0\nmodel:\n  lr: 0.001\n")
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """An empty zoo (registry and folders) in ``tmp_path``; ``add(name, folder_entry)`` registers one."""
    path = tmp_path / "registry.json"
    path.write_text("[]")
    monkeypatch.setattr(registry, "REGISTRY", path)
    monkeypatch.setattr(registry, "ZOO", tmp_path / "zoo")

    def add(**fields):
        items = json.loads(path.read_text())
        base = dict(repo_id="declip-test/tiny", revision=None, regime="mc+ei", sample_rate=16000, channels=1,
                    params=0, headline="", scores={})  # fmt: skip
        items.append(base | fields)
        path.write_text(json.dumps(items))

    return add


from tests.hub_server import hf_env, hub_server, recording_hub  # noqa: E402, F401  (fixtures)
