"""Writing a MUSDB-like tree: FLAC tracks in split folders, atomically, plus a manifest."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from declip.errors import ConfigError

MANIFEST = "manifest.json"


def safe_name(text: str) -> str:
    """A folder name from any text: letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "track"


def to_rate_and_stereo(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """``(frames, channels)`` float32 at ``target_rate``, two channels (mono duplicated, extra dropped)."""
    x = torch.from_numpy(np.ascontiguousarray(audio.T, dtype=np.float32))
    if rate != target_rate:
        x = AF.resample(x, rate, target_rate)
    x = x.expand(2, -1) if x.shape[0] == 1 else x[:2]
    return x.T.contiguous().numpy()


def write_flac(path: Path, audio: np.ndarray, rate: int) -> None:
    """24-bit FLAC written to a temporary name, then renamed: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, audio, rate, subtype="PCM_24", format="FLAC")
    os.replace(tmp, path)


def headroom(*signals: np.ndarray) -> float:
    """The gain that keeps every signal's peak at or below 0.99 (1.0 when already below)."""
    peak = max(float(np.abs(s).max(initial=0.0)) for s in signals)
    return 0.99 / peak if peak > 0.99 else 1.0


def read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST)


def complete(out: Path, manifest: dict | None, settings: dict) -> bool:
    """True when ``manifest`` is a finished build with ``settings`` and every file it lists exists.

    Raises ``ConfigError`` when ``out`` holds a corpus built with other settings: its tracks sit in
    other split folders, so building over it would put a track in two splits."""
    if manifest is None:
        return False
    if manifest.get("settings") != settings:
        raise ConfigError(
            f"{out} holds a corpus built with other settings ({manifest.get('settings')}); "
            "build into a new folder, or delete this one first"
        )
    if not manifest.get("finished"):
        return False
    return all((out / f).exists() for track in manifest["tracks"] for f in track["files"])


def start_manifest(out: Path, settings: dict) -> None:
    """Record the settings before writing any track, so a later build with others is refused."""
    if read_manifest(out) is None:
        out.mkdir(parents=True, exist_ok=True)
        write_manifest(out, {"settings": settings, "finished": False, "tracks": []})


def ensure_debian_packages(packages: list[str]) -> None:
    """Install missing Debian packages when running as root; otherwise say which command to run."""
    missing = [p for p in packages if not debian_package_installed(p)]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ConfigError(f"missing Debian packages {', '.join(missing)}; install them with: sudo {' '.join(command)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(f"could not install {', '.join(missing)} with apt-get: {tail[0]}")


def debian_package_installed(package: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.strip().endswith("installed")
