"""Split a corpus by track, seeded, and record the split in a manifest."""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path

from declip.errors import ConfigError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


def split_tracks(names: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, list[str]]:
    """Assign each track name to one split. Deterministic in ``(sorted names, fractions, seed)``;
    with at least three tracks, valid and test get one track each at least."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(f"split fractions must be three non-negative numbers adding to 1; got {list(fractions)}")
    order = sorted(set(names))
    random.Random(seed).shuffle(order)
    n = len(order)
    n_valid, n_test = (round(f * n) for f in fractions[1:])
    if n >= 3:
        n_valid, n_test = max(n_valid, int(fractions[1] > 0)), max(n_test, int(fractions[2] > 0))
    test, valid, train = order[:n_test], order[n_test : n_test + n_valid], order[n_test + n_valid :]
    return {"train": sorted(train), "valid": sorted(valid), "test": sorted(test)}


def load_or_write_manifest(
    path: Path, names: Sequence[str], fractions: Sequence[float], seed: int
) -> dict[str, list[str]]:
    """The split recorded at ``path``, or a new one written there. A recorded split is kept as it is,
    so a track never moves between splits; tracks it does not list are left out (remove the
    manifest to split again)."""
    if path.exists():
        try:
            recorded = json.loads(path.read_text())
            splits = recorded["splits"]
        except (ValueError, KeyError) as error:
            raise ConfigError(f"{path}: not a declip split manifest ({error}); delete it to split again") from error
        if recorded.get("seed") != seed or recorded.get("fractions") != list(fractions):
            log.warning("%s records another seed or split; keeping its split (delete it to split again)", path)
        return {name: list(splits.get(name, [])) for name in SPLITS}
    splits = split_tracks(names, fractions, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # DDP ranks may write at once
        tmp.write_text(json.dumps({"seed": seed, "fractions": list(fractions), "splits": splits}, indent=1))
        tmp.replace(path)
    except OSError as error:
        raise ConfigError(
            f"cannot write the split manifest {path} ({error.strerror}); give the corpus a writable manifest path"
        ) from error
    return splits
