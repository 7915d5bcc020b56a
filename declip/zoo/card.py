"""The Hugging Face model card (``README.md``) of an exported model."""

from __future__ import annotations

from typing import Any

from declip.zoo.layout import TRAINING_CONFIG

LEVELS = ("1", "3", "5", "7", "10", "15", "20")
REGIME_TEXT = {
    "supervised": "supervised: trained against the clean signal",
    "mc+ei": "self-supervised (MC + EI): trained on clipped audio only, never on the clean signal",
    "mc": "measurement consistency only (the ablation of the self-supervised method)",
    "mc+ei+reclip": "self-supervised (MC + EI + re-clipping): trained on clipped audio only, never on the clean signal",
    "reclip": "self-supervised (re-clipping alone): trained on clipped audio only, never on the clean signal",
}


def _level_key(key: str) -> str:
    return str(int(float(key))) if key.replace(".", "", 1).isdigit() else key


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """Markdown table of ΔSDR (dB) per input SDR, one row per evaluation set."""
    if not metrics:
        return "No evaluation recorded at export time."
    header = "| evaluation | " + " | ".join(f"{level} dB" for level in LEVELS) + " | mean |"
    lines = [header, "|---" * (len(LEVELS) + 2) + "|"]
    for name, scores in metrics.items():
        scores = {_level_key(k): v for k, v in scores.items()}
        cells = [f"{scores[level]:.2f}" if level in scores else "–" for level in LEVELS]
        mean = f"{scores['mean']:.2f}" if "mean" in scores else "–"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def render(config: dict[str, Any], name: str, training_command: str | None = None) -> str:
    """The card: Hub metadata, what the model is, how it was trained and what it scores."""
    regime = config.get("regime", "unknown")
    tags = ["audio", "audio-to-audio", "declipping", "audio-restoration", "pytorch-lightning", regime]
    if regime != "supervised":
        tags.append("self-supervised")
    if config.get("adapted"):
        tags.append("adapted")
    training = config.get("training", {})
    levels = training.get("clip_levels", {})
    backbone = config["backbone"]
    args = ", ".join(f"{k}={v}" for k, v in backbone.get("init_args", {}).items())
    header = "\n".join(
        ["---", "library_name: declip", "license: mit", "pipeline_tag: audio-to-audio", "tags:"]
        + [f"- {tag}" for tag in tags]
        + ["---", ""]
    )
    body = f"""# {name}

A declipper for audio saturated at an unknown level: give it a clipped recording, it restores the
flattened peaks. Made with declip, the PyTorch Lightning framework for declipping.

- Training regime: {REGIME_TEXT.get(regime, regime)}.
- Backbone: `{backbone["class_path"]}({args})`, {config.get("params", "?")} parameters.
- Audio: {config["sample_rate"]} Hz, {config["channels"]} channel(s) (a mono model restores each
  channel of any file on its own).
- Clip levels seen in training: input SDR {levels.get("input_sdr_range")} dB, thresholds
  {levels.get("threshold_range")}.
- Training data: {training.get("data", "not recorded")}.
- Steps: {training.get("global_step", "not recorded")}; declip {config.get("declip_version", "?")}.

## Use

```
declip restore clipped.wav -o restored.wav --model {name}
```

```python
import declip

model = declip.load_model("{name}")
restored = declip.restore(audio, model, sample_rate=rate)  # audio: (frames, channels) array
```

## Scores

ΔSDR (dB) per input SDR: the SDR gain over the clipped input, at each clip level.

{metrics_table(config.get("metrics", {}))}
"""
    adapted = config.get("adapted")
    if adapted:
        minutes = adapted["audio_seconds"] / 60
        stop = " (stopped early by the user)" if adapted.get("interrupted") else ""
        body += (
            f"\n## Adaptation\n\nSelf-supervised adaptation (no clean audio) of `{adapted['from']}` on "
            f"{adapted['file_count']} clipped recording(s), {minutes:.1f} min of audio, {adapted['clipped_files']} "
            f"with clipping: {adapted['steps']} steps in {adapted['seconds']:.0f} s{stop}, lr {adapted['lr']}.\n"
            "The recordings are listed in `config.json` (`adapted.files`). The base model's scores do not "
            "apply to this model and are not repeated here.\n"
        )
        if training_command:
            body += f"\n```\n{training_command}\n```\n"
    elif training_command:
        body += f"\n## Training\n\n```\n{training_command}\n```\n\nThe full configuration is `{TRAINING_CONFIG}`.\n"
    return header + body
