"""The paper's synthetic experiment: supervised vs MC vs MC+EI with the MLP, same data and steps.

    python benchmarks/synthetic_experiment.py --runs /tmp/declip-runs/synthetic --steps 3000

Trains each regime with ``declip fit`` (skipped when a finished run is already there, so the script
resumes), then scores every checkpoint on the same fixed test set (2100 signals, 300 per input SDR;
``--test-size`` changes the count) and prints a markdown table of mean ΔSDR per input SDR.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import lightning as L
import yaml

from declip.data import SyntheticDataModule
from declip.metrics import DEFAULT_LEVELS
from declip.training import DeclipModule
from declip.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
REGIMES = {
    "supervised": ("configs/synthetic-supervised.yaml", {}),
    "mc": ("configs/synthetic-mc.yaml", {}),
    "mc+ei": ("configs/synthetic.yaml", {}),
    # ablations of EI: its weight λ, and the gradient through its target g*x_hat
    "mc+ei-lam1": ("configs/synthetic.yaml", {"weight": 1.0}),
    "mc+ei-lam0.1": ("configs/synthetic.yaml", {"weight": 0.1}),
    "mc+ei-lam1-no-detach": ("configs/synthetic.yaml", {"weight": 1.0, "detach_target": False}),
}


def derived_config(config: str, ei_args: dict, run_dir: Path) -> Path:
    """The config with ``ei_args`` set on its EILoss, written beside the run."""
    if not ei_args:
        return ROOT / config
    data = yaml.safe_load((ROOT / config).read_text())
    for loss in data["model"]["losses"]:
        if loss["class_path"].endswith("EILoss"):
            loss.setdefault("init_args", {}).update(ei_args)
    path = run_dir / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def train(name: str, config: str, ei_args: dict, runs: Path, steps: int, extra: list[str]) -> Path:
    run_dir = runs / name.replace("+", "").replace(".", "")
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = derived_config(config, ei_args, run_dir)
    found = sorted(run_dir.glob("lightning_logs/version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    last = found[-1] if found else run_dir / "lightning_logs/version_0/checkpoints/last.ckpt"
    if last.exists() and load_checkpoint(last)["global_step"] >= steps:
        return last
    command = [
        sys.executable, "-m", "declip", "fit", "--config", str(config_path), f"--trainer.max_steps={steps}",
        f"--trainer.default_root_dir={run_dir}", "--trainer.enable_progress_bar=false", *extra,
    ]  # fmt: skip
    if last.exists():
        command += ["--ckpt_path", str(last)]
    with open(run_dir / "fit.log", "a") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    return max(run_dir.glob("lightning_logs/version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)


def score(checkpoint: Path, config: str, test_size: int | None = None) -> dict[str, float]:
    data_args = yaml.safe_load((ROOT / config).read_text())["data"]["init_args"]
    data_args = {**data_args, "batch_size": 300} | ({"test_size": test_size} if test_size else {})
    data = SyntheticDataModule(**data_args)
    module = DeclipModule.load_from_checkpoint(checkpoint, map_location="cpu")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    return {k.removeprefix("test/"): float(v) for k, v in metrics.items()}


def table(results: dict[str, dict[str, float]], levels: list[float], key: str = "delta_sdr") -> str:
    head = "| regime | " + " | ".join(f"{v:g} dB" for v in levels) + " | mean |"
    rule = "|---" * (len(levels) + 2) + "|"
    rows = [
        f"| {name} | " + " | ".join(f"{r[f'{key}@{v:g}dB']:.2f}" for v in levels) + f" | {r[key]:.2f} |"
        for name, r in results.items()
    ]
    return "\n".join([head, rule, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("/tmp/declip-runs/synthetic"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--test-size", type=int, default=None, help="test signals (default: the data module's)")
    args, extra = parser.parse_known_args()
    results = {}
    for name in args.regimes:
        config, ei_args = REGIMES[name]
        checkpoint = train(name, config, ei_args, args.runs, args.steps, extra)
        results[name] = score(checkpoint, config, args.test_size)
    levels = list(DEFAULT_LEVELS)
    print("Mean ΔSDR (dB) on the synthetic test set, per input SDR:\n")
    print(table(results, levels))
    print("\nMean ΔSDR on clipped samples only (dB):\n")
    print(table(results, levels, "delta_sdr_clipped"))


if __name__ == "__main__":
    main()
