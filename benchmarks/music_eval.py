"""Score music checkpoints on the corpus's held-out test tracks (fixed segments, 7 clip levels).

    python benchmarks/music_eval.py --root data/music \\
        --run mc+ei=configs/music.yaml:RUN_DIR/checkpoints/last.ckpt \\
        --run supervised=configs/music-supervised.yaml:OTHER_DIR/checkpoints/last.ckpt

Each ``--run`` is ``NAME=CONFIG:MODEL``; MODEL is a ``.ckpt`` or anything ``declip restore --model``
takes (a zoo name such as ``unet-music-reclip``, a model folder). The test set comes from the config's data section
(``test_items`` fixed segments of the test split, each clipped at 1, 3, 5, 7, 10, 15, 20 dB;
``--test-items N`` overrides the count).
Prints a markdown table of mean ΔSDR per input SDR and the training step of each checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning as L
import yaml

from declip.config import instantiate
from declip.metrics import DEFAULT_LEVELS
from declip.training import DeclipModule
from declip.training.checkpoint import load_checkpoint
from declip.zoo import load_model

LEVELS = [int(v) for v in DEFAULT_LEVELS]  # input SDRs (dB), as the tables print them


def load(model: str) -> tuple[DeclipModule, int | None]:
    """A module to test and its training step, from a ``.ckpt`` or a released model."""
    if model.endswith(".ckpt"):
        step = load_checkpoint(model)["global_step"]
        return DeclipModule.load_from_checkpoint(model, map_location="cpu"), step
    loaded = load_model(model, precision="fp32")
    step = loaded.info.get("training", {}).get("global_step")
    return DeclipModule.from_model(loaded.model, [], loaded.sample_rate), step


def score(config: Path, model: str, root: str, test_items: int | None = None) -> dict[str, float]:
    data_config = yaml.safe_load(config.read_text())["data"]
    data_config["init_args"]["corpus"]["init_args"]["root"] = root
    if test_items is not None:
        data_config["init_args"]["test_items"] = test_items
    data = instantiate(data_config)
    module, step = load(model)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    out = {k.removeprefix("test/"): float(v) for k, v in metrics.items()}
    out["step"] = step
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/music")
    parser.add_argument("--run", action="append", required=True, help="NAME=CONFIG:MODEL")
    parser.add_argument("--test-items", type=int, default=None, help="test segments (default: the config's)")
    parser.add_argument("--json", type=Path, help="write {name: {input SDR: mean ΔSDR, mean: ...}} here")
    args = parser.parse_args()
    rows, results = [], {}
    for run in args.run:
        name, _, rest = run.partition("=")
        config, _, model = rest.partition(":")
        r = score(Path(config), model, args.root, args.test_items)
        cells = " | ".join(f"{r[f'delta_sdr@{v}dB']:.2f}" for v in LEVELS)
        rows.append(f"| {name} | {r['step']} | {cells} | {r['delta_sdr']:.2f} |")
        results[name] = {str(v): round(r[f"delta_sdr@{v}dB"], 2) for v in LEVELS} | {"mean": round(r["delta_sdr"], 2)}
        print(rows[-1], flush=True)
    print("\n| model | steps | " + " | ".join(f"{v} dB" for v in LEVELS) + " | mean |")
    print("|---" * (len(LEVELS) + 3) + "|")
    print("\n".join(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
