import lightning as L
import pytest
import torch

from declip.data import SyntheticDataModule
from declip.errors import ConfigError
from declip.losses import EILoss, Loss, MCLoss, ReclipLoss, SupervisedLoss
from declip.models import UNet
from declip.training import DeclipModule


class RecordingLoss(Loss):
    """Records whether a clean target reached it."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.saw_clean = []

    def forward(self, x_net, y, physics, model, x=None):
        self.saw_clean.append(x is not None)
        return (x_net * 0).sum()


def _trainer(tmp_path, **kwargs):
    options = dict(
        default_root_dir=tmp_path,
        max_steps=3,
        limit_val_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    return L.Trainer(**{**options, **kwargs})


def _data():
    return SyntheticDataModule(length=128, batch_size=4, val_size=8, test_size=8)


def test_self_supervised_losses_never_receive_the_clean_signal(tmp_path):
    spy = RecordingLoss()
    module = DeclipModule(UNet(widths=(4, 8)), [MCLoss(), spy])
    _trainer(tmp_path).fit(module, _data())
    assert spy.saw_clean and not any(spy.saw_clean)


def test_training_changes_weights_and_logs_every_term(tmp_path):
    module = DeclipModule(UNet(widths=(4, 8)), [MCLoss(), EILoss(weight=0.5)])
    before = [p.detach().clone() for p in module.parameters()]
    trainer = _trainer(tmp_path, val_check_interval=3)
    trainer.fit(module, _data())
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))
    logged = trainer.callback_metrics
    assert {"train/mc", "train/ei", "train/loss", "val/delta_sdr", "val/delta_sdr@1dB", "val/si_sdr"} <= set(logged)
    assert module.regime == "mc+ei"


def test_reclip_trains_from_clipped_data_and_survives_a_checkpoint(tmp_path):
    module = DeclipModule(UNet(widths=(4, 8)), [MCLoss(), ReclipLoss(g_min=1.2, g_max=3.0)])
    trainer = _trainer(tmp_path, val_check_interval=3)
    trainer.fit(module, _data())
    assert {"train/mc", "train/reclip", "val/reclip"} <= set(trainer.callback_metrics)
    assert module.regime == "mc+reclip"
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = DeclipModule.load_from_checkpoint(tmp_path / "m.ckpt")
    assert isinstance(loaded.losses[1], ReclipLoss) and loaded.losses[1].transform.g_max == 3.0


@pytest.mark.parametrize(("losses", "passes"), [([ReclipLoss(g_min=1.0, g_max=8.0)], 1), ([MCLoss(), ReclipLoss()], 2)])
def test_reclip_alone_runs_the_network_once_per_training_step(losses, passes):
    module = DeclipModule(UNet(widths=(4, 8)), losses)
    calls = []
    module.model.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape))
    loss = module.training_step(next(iter(_data().train_dataloader())), 0)
    assert len(calls) == passes and loss.requires_grad  # re-clipping alone: the harder clipping only


def test_checkpoint_round_trip_needs_no_arguments(tmp_path):
    module = DeclipModule(UNet(channels=1, widths=(4, 8)), SupervisedLoss("l1"), lr=3e-4, sample_rate=16000)
    trainer = _trainer(tmp_path)
    trainer.fit(module, _data())
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = DeclipModule.load_from_checkpoint(path)
    assert loaded.hparams.sample_rate == 16000 and loaded.hparams.lr == 3e-4
    assert isinstance(loaded.losses[0], SupervisedLoss) and loaded.losses[0].metric == "l1"
    batch = next(iter(_data().test_dataloader()))
    module.eval()
    loaded.eval()
    with torch.no_grad():
        physics = module.physics_of(batch)
        assert torch.equal(loaded(batch["y"], physics), module(batch["y"], physics))


def test_losses_with_the_same_name_are_all_counted(tmp_path):
    module = DeclipModule(UNet(widths=(4, 8)), [SupervisedLoss("mse"), SupervisedLoss("l1")])
    assert module.loss_names == ["supervised", "supervised_2"]
    batch = next(iter(_data().train_dataloader()))
    physics = module.physics_of(batch)
    x_net = module(batch["y"], physics)
    terms = module._loss_terms(batch, x_net, physics)
    assert terms["loss"] == terms["supervised"] + terms["supervised_2"] and terms["supervised_2"] > 0


def test_a_channel_mismatch_between_data_and_backbone_is_a_config_error():
    module = DeclipModule(UNet(channels=2, widths=(4, 8)), MCLoss())
    batch = next(iter(_data().train_dataloader()))  # mono
    with pytest.raises(ConfigError, match="channels"):
        module.physics_of(batch)


def test_init_weights_load_a_model_folder_when_fit_sets_up():
    from pathlib import Path

    from declip.config import config_of, instantiate
    from declip.zoo import load_model

    root = Path(__file__).resolve().parents[2]
    shipped = load_model(str(root / "zoo/unet-music-reclip")).model
    module = DeclipModule(
        instantiate(config_of(shipped.backbone)), ReclipLoss(), init_weights=str(root / "zoo/unet-music-reclip")
    )
    module.setup("validate")  # only fit starts from them
    assert not torch.equal(module.model.backbone.stem.weight, shipped.backbone.stem.weight)
    module.setup("fit")
    assert all(torch.equal(a, b) for a, b in zip(module.model.state_dict().values(), shipped.state_dict().values()))
