"""``declip app`` in a real headless browser: upload, restore, listen, look, download; a corrupt upload."""

import subprocess
import sys
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from declip.data.ffmpeg import encode_aac
from tests.app.conftest import clipped_recording
from tests.detection.signals import RATE, clipped_at, rich_music

RESTORE_SECONDS = 180


def _upload(driver, path: Path) -> None:
    """Clear the file field when it holds one, then choose ``path``."""
    clear = driver.find_elements(By.CSS_SELECTOR, "#upload button[aria-label='Clear']")
    if clear:
        clear[0].click()
    field = WebDriverWait(driver, 30).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#upload input[type=file]"))
    )
    field.send_keys(str(path))
    WebDriverWait(driver, 60).until(ec.text_to_be_present_in_element((By.ID, "upload"), path.stem))


def _restore(driver, level: str, expect: str) -> str:
    """Set the clip level, press Restore and wait for ``expect`` in the status; returns the status."""
    field = driver.find_element(By.CSS_SELECTOR, "#level textarea, #level input")
    field.clear()
    field.send_keys(level)
    before = driver.find_element(By.ID, "status").text
    driver.find_element(By.ID, "restore").click()
    WebDriverWait(driver, RESTORE_SECONDS).until(
        lambda d: (text := d.find_element(By.ID, "status").text) != before and expect in text and _idle(d, "status")
    )
    return driver.find_element(By.ID, "status").text


def _idle(driver, element: str) -> bool:
    """Whether ``element`` shows no pending event (its status tracker, the timer and progress, is hidden)."""
    tracker = driver.find_element(By.CSS_SELECTOR, f"#{element} [data-testid=status-tracker]")
    return "hide" in tracker.get_attribute("class").split()


def _download(driver, name: str) -> bytes:
    for old in driver.download_dir.iterdir():
        old.unlink()
    link = driver.find_element(By.CSS_SELECTOR, "#download a.download-link")
    assert link.get_attribute("download") == name
    link.click()
    target = driver.download_dir / name
    WebDriverWait(driver, 60).until(lambda d: target.is_file() and not list(d.download_dir.glob("*.crdownload")))
    return target.read_bytes()


def _cli_restore(source: Path, out: Path, *options: str) -> bytes:
    subprocess.run([sys.executable, "-m", "declip", "restore", str(source), "-o", str(out), *options], check=True)
    return out.read_bytes()


def _players_loaded(driver) -> None:
    """Both players hold audio the browser decoded: the waveform is drawn and the duration shown."""
    for player in ("player-input", "player-restored"):
        WebDriverWait(driver, 60).until(
            lambda d, p=player: (
                d.find_elements(By.CSS_SELECTOR, f"#{p} audio") and "0:03" in d.find_element(By.ID, p).text
            )
        )


def _spectrogram_src(driver) -> str:
    image = WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#spectrogram img")))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return arguments[0].naturalWidth", image) > 0)
    return image.get_attribute("src")


@pytest.fixture(scope="module")
def page(app_server, browser):
    browser.get(app_server["url"])
    WebDriverWait(browser, 60).until(ec.element_to_be_clickable((By.ID, "restore")))
    return browser


def test_binds_loopback_only(app_server):
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.split(":")
            if state == "0A" and int(port, 16) == app_server["port"]:
                listening.add(address)
    assert listening == {"0100007F"}  # 127.0.0.1, and nothing else (no 0.0.0.0, no IPv6)


def test_restore_compare_download_and_recover_from_a_corrupt_file(page, tmp_path):
    song = clipped_recording(tmp_path / "song.flac")
    _upload(page, song)
    status = _restore(page, "auto", "restored")
    assert "song.flac" in status and "hard-clipped, symmetric" in status and "+0.4000 / -0.4000" in status
    _players_loaded(page)
    first_image = _spectrogram_src(page)
    assert first_image.endswith(".png")
    assert _download(page, "song-restored.wav") == _cli_restore(song, tmp_path / "cli.wav")

    start = page.find_element(By.CSS_SELECTOR, "#region-start input[type=number]")
    start.clear()
    start.send_keys("1.5", Keys.TAB)  # another region: its spectrograms replace the first ones
    WebDriverWait(page, 60).until(lambda d: "region-1.500-5.000" in _spectrogram_src(d))
    assert _spectrogram_src(page) != first_image

    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEgarbage, not audio")
    _upload(page, corrupt)
    status = _restore(page, "auto", "Error")
    assert "broken.wav" in status and "unreadable audio" in status
    assert len(status.splitlines()) == 1  # one message
    assert not page.find_elements(By.CSS_SELECTOR, "#spectrogram img")  # the last result is not shown as this one's
    assert not page.find_elements(By.CSS_SELECTOR, "#download a.download-link")

    other = clipped_recording(tmp_path / "other.wav", level=0.3, seed=11)
    _upload(page, other)
    status = _restore(page, "0.299", "restored")  # below 0.3: 16-bit samples round to either side of it
    assert "other.wav" in status and "level (given)" in status and "+0.2990 / -0.2990" in status
    _players_loaded(page)
    _spectrogram_src(page)
    assert _download(page, "other-restored.wav") == _cli_restore(other, tmp_path / "cli2.wav", "--threshold", "0.299")


def test_a_bad_clip_level_and_a_missing_model_are_one_line_each(page, tmp_path):
    song = clipped_recording(tmp_path / "level.wav")
    _upload(page, song)
    status = _restore(page, "loud", "Error")
    assert "clip level 'loud'" in status and "auto" in status
    model = page.find_element(By.CSS_SELECTOR, "#model input")
    model.clear()
    model.send_keys(str(tmp_path / "no-such-model"))
    status = _restore(page, "auto", "Error")
    assert "model:" in status and "no-such-model" in status
    # the page still answers: the next restore with the zoo model works
    model.clear()
    model.send_keys("unet-music-reclip")
    assert "restored" in _restore(page, "auto", "restored")


def test_an_aac_upload_is_restored_played_and_downloaded(page, tmp_path):
    clipped, _ = clipped_at(rich_music(3.0, 2, 9), 5)
    song = tmp_path / "phone.m4a"
    song.write_bytes(encode_aac(clipped, RATE, 128))
    _upload(page, song)
    status = _restore(page, "auto", "restored")
    assert "phone.m4a" in status and "lossy-coded" in status
    _players_loaded(page)  # the input player plays the decoded samples
    assert _spectrogram_src(page).endswith(".png")
    assert _download(page, "phone-restored.wav") == _cli_restore(song, tmp_path / "cli.wav")
