"""``python -m declip``: the same as the ``declip`` command."""

import sys

from declip.cli import main

sys.exit(main())
