"""An installed wheel (``pip install .``, not editable) carries the zoo and restores offline."""

import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from setuptools import find_packages

from declip.zoo.registry import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_list_is_whole():
    tomllib = pytest.importorskip("tomllib")
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = find_packages(str(ROOT), include=["declip*"])
    assert sorted(listed) == sorted([*found, "declip.zoo.released"]), "update [tool.setuptools] packages"


def test_installed_wheel_restores_offline_with_the_default_model(tmp_path):
    # build from a copy of what the wheel is made of: an in-place build would reuse a stale build/
    source = tmp_path / "source"
    for name in ("declip", "zoo"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w"]
    subprocess.run([*build, str(wheels)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("declip-*.whl")
    assert "declip/detection/coded_mask.safetensors" in zipfile.ZipFile(wheel).namelist()  # coded files' masks
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # the dependencies (torch, ...) from this interpreter's site-packages, as plain paths: their .pth
    # files, an editable declip's among them, are not run, so the wheel's declip is the one imported
    (inner,) = (env_dir / "lib").glob("python3*/site-packages")
    (inner / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, cwd=tmp_path)  # fmt: skip
    where = subprocess.run([python, "-c", "import declip.zoo.registry as r; print(r.ZOO)"],
                           check=True, cwd=tmp_path, capture_output=True, text=True).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(env_dir), f"the wheel's copy must be used, not {where}"
    assert (Path(where) / DEFAULT_MODEL / "model.safetensors").is_file()

    rate = 44100
    t = np.arange(rate) / rate
    clean = 0.8 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t)
    theta = 0.5
    sf.write(tmp_path / "clipped.wav", np.clip(clean, -theta, theta).astype(np.float32), rate, subtype="FLOAT")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    declip = env_dir / "bin" / "declip"
    subprocess.run([declip, "restore", "clipped.wav", "-o", "out"], check=True, cwd=tmp_path, env=env)
    restored, out_rate = sf.read(tmp_path / "out" / "clipped.wav")
    assert out_rate == rate and restored.shape == clean.shape
    assert np.abs(restored).max() > theta * 1.05  # the trained default model extends the flattened peaks
