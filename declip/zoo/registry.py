"""The zoo's registry: released models by name, with their Hub repo, pinned revision and weights hash.

The registry ships inside the package (``declip/zoo/registry.json``); the released folders (card,
config, training config and, for small models, the weights) live in the repository's ``zoo/``,
which an installed wheel carries as ``declip/zoo/released``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from declip.errors import ConfigError

REGISTRY = Path(__file__).with_name("registry.json")
_PACKAGED = Path(__file__).with_name("released")  # zoo/ as a wheel installs it
ZOO = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "zoo"  # else the checkout's
DEFAULT_MODEL = "unet-music-reclip"  # re-clipping alone: the best self-supervised model (docs/results.md)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    repo_id: str
    revision: str | None  # a full commit hash once published; None: local weights only
    sha256: str
    regime: str
    sample_rate: int
    channels: int
    params: int
    headline: str
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return ZOO / self.name

    def as_dict(self) -> dict:
        return asdict(self)


def entries() -> dict[str, ZooEntry]:
    return {item["name"]: ZooEntry(**item) for item in json.loads(REGISTRY.read_text())}


def unknown_model(name: str) -> ConfigError:
    return ConfigError(
        f"unknown model {name!r}; zoo models: {', '.join(sorted(entries())) or 'none'} "
        "(or give a Hub repo id ORG/NAME[@REVISION], a model folder or a .ckpt)"
    )


def entry(name: str) -> ZooEntry:
    known = entries()
    if name not in known:
        raise unknown_model(name)
    return known[name]
