"""``app.py``: the page as a Hugging Face Space, run as a Space runs it (``python app.py``)."""

import json
import sys
import urllib.request
from pathlib import Path

from tests.app.conftest import free_port, serving

ROOT = Path(__file__).resolve().parents[2]


def test_the_space_serves_the_page_with_its_model_first(tmp_path):
    port = free_port()
    env = {"GRADIO_SERVER_PORT": str(port), "DECLIP_MODEL": "unet-music-reclip-g16"}
    with serving([sys.executable, str(ROOT / "app.py")], tmp_path, port, env) as url:
        with urllib.request.urlopen(url + "config", timeout=30) as response:
            config = json.load(response)
    dropdowns = [c["props"] for c in config["components"] if c.get("props", {}).get("elem_id") == "model"]
    assert dropdowns and dropdowns[0]["value"] == "unet-music-reclip-g16"
    offered = [choice[0] if isinstance(choice, list) else choice for choice in dropdowns[0]["choices"]]
    assert offered[0] == "unet-music-reclip-g16" and "unet-music-reclip" in offered
