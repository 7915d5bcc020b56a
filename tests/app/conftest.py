"""A real ``declip app`` on a free loopback port and a headless Debian chromium driven by selenium."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import clipped_wav

STARTUP_SECONDS = 180  # importing gradio and torch on a busy 2-core machine takes a while


def clipped_recording(path: Path, **changes) -> Path:
    """``clipped_wav`` with the page's defaults: 3 s of stereo tones at 44.1 kHz clipped at 0.4."""
    return clipped_wav(path, **{"seconds": 3.0, "rate": 44100, "level": 0.4, "seed": 7} | changes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(command: list[str], root: Path, port: int, extra_env: dict | None = None):
    """Run ``command`` (a page server) until it answers on ``port``; yields its URL; stops it after."""
    env = dict(os.environ, GRADIO_TEMP_DIR=str(root / "gradio"), GRADIO_ANALYTICS_ENABLED="False", TMPDIR=str(root))
    env.update(extra_env or {})
    log_path = root / "server.log"
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"{command} exited with {server.returncode}: {log_path.read_text()}")
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command} did not answer in {STARTUP_SECONDS} s: {log_path.read_text()}")
                time.sleep(1)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """``declip app`` in a subprocess; yields its URL and port."""
    root = tmp_path_factory.mktemp("app")
    port = free_port()
    with serving([sys.executable, "-m", "declip", "app", "--port", str(port)], root, port) as url:
        yield {"url": url, "port": port}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless chromium with a fresh profile; downloads land in ``browser.download_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root = tmp_path_factory.mktemp("browser")
    downloads = root / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's, as .ci/run installs it
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={root / 'profile'}", "--window-size=1280,2000",
    ):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.download_dir = downloads
    try:
        yield driver
    finally:
        driver.quit()
