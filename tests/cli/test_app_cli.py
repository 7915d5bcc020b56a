"""``declip app``'s arguments (the page itself: tests/app)."""

import pytest

from declip.cli import main


def test_declip_app_refuses_a_bad_port(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["app", "--port", "70000"])
    assert stop.value.code == 2 and "--port must be between 1 and 65535" in capsys.readouterr().err
