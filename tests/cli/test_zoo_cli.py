"""``declip zoo list|export|download`` (pushing and downloading against a Hub: tests/zoo/test_hub.py)."""

import json

from declip.cli import main


def test_zoo_cli_lists_and_exports(checkpoint, zoo, tmp_path, capsys):
    zoo(name="tiny", sha256="a" * 64, params=123, headline="3.00 dB")
    assert main(["zoo", "list", "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["name"] == "tiny" and item["repo_id"] == "declip-test/tiny" and item["params"] == 123
    assert main(["zoo", "list"]) == 0
    assert "unpublished" in capsys.readouterr().out
    assert main(["zoo", "export", str(checkpoint), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert main(["zoo", "export", str(checkpoint), str(tmp_path / "out")]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["zoo", "download", "tiny"]) == 2
    assert "not published on the Hub" in capsys.readouterr().err
