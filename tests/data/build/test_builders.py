import json
import shutil
import zipfile

import numpy as np
import pytest
import soundfile as sf

from declip.data import AudioSource, MusdbCorpus
from declip.data.build import build_music, build_stems, music
from declip.errors import ConfigError

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: somegame

Files: *
Copyright: 2010 Someone
License: GPL-2+

Files: music/calm-*.ogg
Copyright: 2011 Someone Else
License: CC-BY-SA-3.0
 Long license text.
"""


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A 'Debian package' of three tracks: a mono OGG at 22.05 kHz, a hot float WAV, a zip member."""
    files = tmp_path / "pkg/usr/share/games/somegame/music"
    files.mkdir(parents=True)
    t = np.arange(22050) / 22050
    sf.write(files / "calm-1.ogg", 0.5 * np.sin(2 * np.pi * 440 * t), 22050)
    sf.write(files / "loud.wav", np.stack([1.6 * np.sin(2 * np.pi * 220 * t[:11025])] * 2, 1), 44100, subtype="FLOAT")
    sf.write(tmp_path / "inner.wav", 0.3 * np.sin(2 * np.pi * 330 * t), 22050)
    with zipfile.ZipFile(files / "more.pk3", "w") as archive:
        archive.write(tmp_path / "inner.wav", "music/inner.wav")
    sources = [AudioSource(str(files / "calm-1.ogg")), AudioSource(str(files / "loud.wav"))]
    sources.append(AudioSource(str(files / "more.pk3"), "music/inner.wav"))
    (tmp_path / "doc/somegame-music").mkdir(parents=True)
    (tmp_path / "doc/somegame-music/copyright").write_text(COPYRIGHT)
    monkeypatch.setattr(music, "package_audio", lambda package: sources)
    monkeypatch.setattr(music, "ensure_debian_packages", lambda packages: None)
    monkeypatch.setattr(music, "DOC_ROOT", tmp_path / "doc")
    return sources


def test_music_builder_writes_a_musdb_tree_with_manifest_and_is_idempotent(fake_package, tmp_path):
    out = tmp_path / "corpus"
    manifest = build_music(out, packages=["somegame-music"], split=(0.34, 0.33, 0.33))
    tracks = {t["name"]: t for t in manifest["tracks"]}
    assert sorted(tracks) == ["somegame-music-calm-1", "somegame-music-loud", "somegame-music-more.pk3_music_inner"]
    assert sorted(t["split"] for t in tracks.values()) == ["test", "train", "valid"]
    calm = tracks["somegame-music-calm-1"]
    assert calm["license"] == "CC-BY-SA-3.0" and tracks["somegame-music-loud"]["license"] == "GPL-2+"
    assert calm["package"] == "somegame-music" and calm["seconds"] == pytest.approx(1.0, abs=1e-3)
    audio, rate = sf.read(out / calm["files"][0], always_2d=True)
    assert rate == 44100 and audio.shape == (44100, 2)
    loud, _ = sf.read(out / tracks["somegame-music-loud"]["files"][0])
    assert 0.98 < np.abs(loud).max() <= 0.99 + 1e-6  # scaled down, never clipped
    stamp = {f: (out / f).stat().st_mtime_ns for t in tracks.values() for f in t["files"]}
    assert build_music(out, packages=["somegame-music"], split=(0.34, 0.33, 0.33)) == manifest
    assert stamp == {f: (out / f).stat().st_mtime_ns for f in stamp}
    assert json.loads((out / "manifest.json").read_text()) == manifest
    corpus = MusdbCorpus(str(out)).load()
    assert sum(len(v) for v in corpus.values()) == 3


def test_music_builder_without_root_prints_the_apt_command(monkeypatch, tmp_path):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setattr("declip.data.build.tree.debian_package_installed", lambda package: False)
    with pytest.raises(ConfigError, match="sudo apt-get install -y --no-install-recommends no-such-music"):
        build_music(tmp_path / "out", packages=["no-such-music"])


needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None, reason="fluidsynth is not installed (.ci/run installs it)"
)


@needs_fluidsynth
def test_stems_builder_renders_parts_whose_sum_is_the_mixture(tmp_path):
    out = tmp_path / "stems"
    manifest = build_stems(out, pieces=1, measures=1)
    (track,) = manifest["tracks"]
    stems = [sf.read(out / f, always_2d=True)[0] for f in track["files"][:-1]]
    mixture, rate = sf.read(out / track["files"][-1], always_2d=True)
    assert rate == 44100 and len(stems) >= 4 and mixture.shape[1] == 2
    assert np.abs(np.sum(stems, axis=0) - mixture).max() < 1e-5
    assert all(np.abs(s).max() > 1e-3 for s in stems)  # every part makes sound
    stamp = (out / track["files"][-1]).stat().st_mtime_ns
    assert build_stems(out, pieces=1, measures=1) == manifest
    assert (out / track["files"][-1]).stat().st_mtime_ns == stamp
    loaded = MusdbCorpus(str(out), valid_fraction=0).load()["train"]
    assert set(loaded[0].stems) == {f.split("/")[-1].removesuffix(".flac") for f in track["files"]}


def test_building_over_a_corpus_with_other_settings_is_refused(fake_package, tmp_path):
    out = tmp_path / "corpus"
    build_music(out, packages=["somegame-music"], split=(0.34, 0.33, 0.33))
    with pytest.raises(ConfigError, match="other settings"):
        build_music(out, packages=["somegame-music"], split=(0.34, 0.33, 0.33), seed=1)


def _stems_corpus(out, pieces):
    """A finished 'stems' corpus of short silent-free pieces, written as the stems builder lays it out."""
    tracks = []
    for i, (name, split) in enumerate(pieces):
        files = []
        for j, stem in enumerate(("soprano", "bass", "mixture")):
            path = out / split / name / f"{stem}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(4410) / 44100
            sf.write(path, np.stack([0.1 * (i + 1) * np.sin(2 * np.pi * (220 + 110 * j) * t)] * 2, 1), 44100)
            files.append(f"{split}/{name}/{stem}.flac")
        tracks.append({"name": name, "split": split, "files": files, "seconds": 0.1})
    settings = {"kind": "stems", "pieces": len(pieces)}
    manifest = {"settings": settings, "finished": True, "sample_rate": 44100, "channels": 2, "tracks": tracks}
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_solo_builder_makes_each_stem_a_track_in_its_pieces_split(tmp_path):
    from declip.data.build import build_solo

    _stems_corpus(tmp_path / "stems", [("a", "train"), ("b", "valid")])
    out = tmp_path / "solo"
    manifest = build_solo(out, tmp_path / "stems", ["soprano", "bass"])
    assert {(t["name"], t["split"]) for t in manifest["tracks"]} == {
        ("a-soprano", "train"), ("a-bass", "train"), ("b-soprano", "valid"), ("b-bass", "valid"),
    }  # fmt: skip
    copied, _ = sf.read(out / "valid/b-bass/mixture.flac", always_2d=True)
    original, _ = sf.read(tmp_path / "stems/valid/b/bass.flac", always_2d=True)
    assert np.array_equal(copied, original)
    stamp = (out / "valid/b-bass/mixture.flac").stat().st_mtime_ns
    assert build_solo(out, tmp_path / "stems", ["soprano", "bass"]) == manifest
    assert (out / "valid/b-bass/mixture.flac").stat().st_mtime_ns == stamp
    loaded = MusdbCorpus(str(out)).load()
    assert sorted(t.name for t in loaded["valid"]) == ["valid/b-bass", "valid/b-soprano"]


def test_solo_builder_skips_a_piece_without_the_stem_and_refuses_a_stem_no_piece_has(tmp_path, caplog):
    from declip.data.build import build_solo

    _stems_corpus(tmp_path / "stems", [("a", "train"), ("b", "valid")])
    (tmp_path / "stems/valid/b/bass.flac").unlink()
    manifest = json.loads((tmp_path / "stems/manifest.json").read_text())
    manifest["tracks"][1]["files"].remove("valid/b/bass.flac")
    (tmp_path / "stems/manifest.json").write_text(json.dumps(manifest))
    built = build_solo(tmp_path / "solo", tmp_path / "stems", ["soprano", "bass"])
    assert sorted(t["name"] for t in built["tracks"]) == ["a-bass", "a-soprano", "b-soprano"]
    assert "skipped: b/bass" in caplog.text
    refused = r"no piece has the stem 'tenor' \(its stems: bass, soprano\); choose --stems"
    with pytest.raises(ConfigError, match=refused):
        build_solo(tmp_path / "solo2", tmp_path / "stems", ["soprano", "tenor"])
    assert not (tmp_path / "solo2").exists()
    with pytest.raises(ConfigError, match="not a finished stems corpus.*declip data build stems --out"):
        build_solo(tmp_path / "solo3", tmp_path / "nothing")


def test_declip_data_build_solo_on_the_command_line(tmp_path, capsys):
    """Stem names are stripped and each taken once; the summary line counts the tracks and their length from the
    files, whether or not the stems corpus recorded it."""
    from declip.cli import main

    _stems_corpus(tmp_path / "stems", [("a", "train"), ("b", "test")])
    manifest = json.loads((tmp_path / "stems/manifest.json").read_text())
    for track in manifest["tracks"]:
        del track["seconds"]
    (tmp_path / "stems/manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "solo"
    assert main(["data", "build", "solo", "--from", str(tmp_path / "stems"), "--out", str(out),
                 "--stems", " bass , bass,soprano"]) == 0  # fmt: skip
    assert f"{out}: 4 tracks, 0.00 h (train 2, valid 0, test 2)" in capsys.readouterr().out
    built = json.loads((out / "manifest.json").read_text())
    assert built["settings"]["stems"] == ["bass", "soprano"]
    assert all(t["seconds"] == 0.1 for t in built["tracks"])
