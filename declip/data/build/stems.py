"""``declip data build stems``: multi-stem tracks rendered from MIDI (music21's corpus, FluidSynth)."""

from __future__ import annotations

import copy
import logging
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from declip.data.build.tree import (
    complete,
    ensure_debian_packages,
    headroom,
    read_manifest,
    safe_name,
    start_manifest,
    write_flac,
    write_manifest,
)
from declip.data.splits import split_tracks
from declip.errors import ConfigError

log = logging.getLogger(__name__)

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# General MIDI programs the parts are played on: flute, violin, clarinet, cello, bassoon, oboe, viola, horn
PROGRAMS = (73, 40, 71, 42, 70, 68, 41, 60)


def _music21():
    try:
        import music21
    except ImportError as error:
        raise ConfigError(
            "rendering stems needs music21: pip install 'declip[stems]' (or pip install music21)"
        ) from error
    return music21


def _pieces(count: int) -> list[Path]:
    """The first ``count`` Bach chorales of music21's corpus with four or more parts, in a fixed order."""
    music21 = _music21()
    chosen = []
    for path in sorted(music21.corpus.getComposer("bach"), key=str):
        if len(chosen) == count:
            break
        if str(path).endswith(".mxl") and len(music21.corpus.parse(path).parts) >= 4:
            chosen.append(Path(path))
    return chosen


def _render_part(
    score, index: int, program: int, tempo: int, sample_rate: int, soundfont: str, tmp: Path
) -> np.ndarray:
    music21 = _music21()
    single = copy.deepcopy(score)
    for other in [p for i, p in enumerate(single.parts) if i != index]:
        single.remove(other)
    part = single.parts[0]
    for old in list(part.recurse().getElementsByClass(music21.instrument.Instrument)):
        old.activeSite.remove(old)
    part.insert(0, music21.instrument.instrumentFromMidiProgram(program))
    part.insert(0, music21.tempo.MetronomeMark(number=tempo))
    midi, wav = tmp / f"part{index}.mid", tmp / f"part{index}.wav"
    single.write("midi", fp=str(midi))
    command = ["fluidsynth", "-ni", "-g", "0.6", "-r", str(sample_rate), "-F", str(wav), soundfont, str(midi)]
    subprocess.run(command, check=True, capture_output=True)
    audio, _ = sf.read(wav, dtype="float32", always_2d=True)
    return audio


def build_stems(
    out: str | Path,
    pieces: int = 8,
    measures: int | None = None,
    sample_rate: int = 44100,
    split: tuple[float, float, float] = (0.75, 0.125, 0.125),
    seed: int = 0,
    soundfont: str = SOUNDFONT,
) -> dict:
    """Render ``pieces`` chorales part by part: ``out/<split>/<piece>/<part>.flac`` plus ``mixture.flac``
    (the sum of the parts), stereo, 24-bit, and ``out/manifest.json``. Each part gets a General MIDI
    instrument and each piece a tempo, drawn from ``seed``. ``measures`` keeps only the first bars.
    Deterministic and idempotent."""
    out = Path(out)
    settings = {
        "kind": "stems", "pieces": pieces, "measures": measures, "sample_rate": sample_rate, "split": list(split),
        "seed": seed, "soundfont": soundfont,
    }  # fmt: skip
    manifest = read_manifest(out)
    if complete(out, manifest, settings):
        log.info("%s is up to date (%d tracks)", out, len(manifest["tracks"]))
        return manifest
    if shutil.which("fluidsynth") is None or not Path(soundfont).exists():
        ensure_debian_packages(["fluidsynth", "fluid-soundfont-gm"])
    music21 = _music21()
    start_manifest(out, settings)
    paths = _pieces(pieces)
    names = {safe_name(f"bach-{p.stem}"): p for p in paths}
    splits = split_tracks(sorted(names), split, seed)
    split_of = {name: split_name for split_name, members in splits.items() for name in members}
    tracks = []
    for number, name in enumerate(sorted(names)):
        rng = random.Random(f"{seed}-{name}")
        folder = out / split_of[name] / name
        score = music21.corpus.parse(names[name])
        if measures:
            score = score.measures(1, measures)
        part_names = []
        for i, part in enumerate(score.parts):
            base = safe_name((part.partName or f"part{i}").lower())
            part_names.append(base if base not in part_names else f"{base}-{i}")
        files = [f"{split_of[name]}/{name}/{stem}.flac" for stem in [*part_names, "mixture"]]
        if not all((out / f).exists() for f in files):
            tempo = rng.randint(60, 110)
            programs = [PROGRAMS[(number + i) % len(PROGRAMS)] for i in range(len(part_names))]
            with tempfile.TemporaryDirectory() as tmp:
                parts = [
                    _render_part(score, i, programs[i], tempo, sample_rate, soundfont, Path(tmp))
                    for i in range(len(part_names))
                ]
            length = max(len(p) for p in parts)
            parts = [np.pad(p, ((0, length - len(p)), (0, 0))) for p in parts]
            mixture = np.sum(parts, axis=0)
            gain = headroom(mixture, *parts)
            for stem, audio in zip(part_names, parts):
                write_flac(folder / f"{stem}.flac", audio * gain, sample_rate)
            write_flac(folder / "mixture.flac", mixture * gain, sample_rate)
        tracks.append({
            "name": name, "split": split_of[name], "files": files, "source": f"music21 corpus: {names[name].name}",
            "license": "music21 corpus (BSD-3-Clause); score in the public domain",
            "seconds": round(sf.info(out / files[-1]).duration, 3),
        })  # fmt: skip
    manifest = {"settings": settings, "finished": True, "sample_rate": sample_rate, "channels": 2, "tracks": tracks}
    write_manifest(out, manifest)
    return manifest
