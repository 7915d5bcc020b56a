"""``load_model(ref)``: one loader for zoo names, Hub repos, model folders and Lightning checkpoints."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from declip.errors import ConfigError
from declip.inference.loaded import LoadedModel
from declip.models import Declipper
from declip.models.trusted import build_backbone
from declip.zoo import hub
from declip.zoo.layout import WEIGHTS, read_config, sha256
from declip.zoo.registry import entries, entry, unknown_model


def load_folder(folder: str | Path, device: str = "cpu", expected_sha256: str | None = None) -> LoadedModel:
    """A model folder in the Hub layout (``config.json`` + ``model.safetensors``)."""
    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ConfigError(f"{folder}: no {WEIGHTS}; declip loads safetensors weights only")
    if expected_sha256 is not None and sha256(weights) != expected_sha256:
        raise ConfigError(f"{weights}: sha256 differs from the zoo registry's; refusing to load (re-download it)")
    try:
        state = load_file(weights, device=device)
    except (SafetensorError, OSError) as error:
        raise ConfigError(f"{weights}: unreadable safetensors file ({error})") from error
    backbone = build_backbone(config["backbone"], str(folder / "config.json"))
    model = Declipper(backbone, consistent=bool(config.get("consistent_output", False)))
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ConfigError(f"{weights}: weights do not fit the backbone in {folder / 'config.json'}") from error
    return LoadedModel.from_module_model(
        model.to(device).eval(), int(config["sample_rate"]), int(config["channels"]), config
    )


def load_model(ref: str | Path, device: str = "cpu", precision: str = "auto") -> LoadedModel:
    """Load a declipper from ``ref`` for inference on ``device`` in ``precision`` (``auto``: bfloat16
    where the device runs it natively and the model agrees with float32 on a probe; ``fp32``; ``bf16``):

    - a zoo name (``declip zoo list``): the weights shipped in ``zoo/NAME``, else the registry's
      Hub repo at its pinned revision; either way checked against the registry's sha256;
    - ``ORG/NAME[@REVISION]`` on the Hugging Face Hub (branch, tag or full commit hash), from the
      cache when offline;
    - a local folder in the Hub layout, or a ``.ckpt`` written by ``declip fit``.
    """
    return _load(ref, device).with_precision(precision)


def _load(ref: str | Path, device: str) -> LoadedModel:
    text = str(ref)
    path = Path(text).expanduser()
    if path.suffix == ".ckpt" or path.is_file():
        return LoadedModel.from_checkpoint(path, device=device)
    if path.is_dir():
        return load_folder(path, device)
    if text in entries():
        item = entry(text)
        if (item.folder / WEIGHTS).is_file():
            return load_folder(item.folder, device, expected_sha256=item.sha256)
        if item.revision is None:
            raise ConfigError(
                f"{text}: its weights are missing from {item.folder} and not published on the Hub yet; "
                "reinstall declip (pip install . from a clone installs every zoo model)"
            )
        return load_folder(hub.download(item.repo_id, item.revision), device, expected_sha256=item.sha256)
    if "/" in text and not text.startswith((".", "/", "~")):
        repo_id, revision = hub.parse_ref(text)
        return load_folder(hub.download(repo_id, revision), device)
    raise unknown_model(text)
