"""The ``declip app`` page as a Hugging Face Space (gradio SDK) for one zoo model.

A Space runs ``python app.py`` from its repository root. To make one (not deployed from here):

1. create a Space with the gradio SDK; its README.md front matter names this file (``app_file: app.py``);
2. copy this file into it, with a ``requirements.txt`` that installs declip with the page's extra,
   e.g. ``declip[app] @ git+https://github.com/ORG/declip`` (the wheel carries the zoo's models);
3. optionally set the Space variable ``DECLIP_MODEL`` to another zoo name or ``ORG/NAME@REVISION``.

The Space sets GRADIO_SERVER_NAME (0.0.0.0) and GRADIO_SERVER_PORT; run locally, this file binds
127.0.0.1 like ``declip app``.
"""

import os

from declip.app import build_page, launch_options
from declip.zoo import DEFAULT_MODEL

MODEL = os.environ.get("DECLIP_MODEL", DEFAULT_MODEL)
demo = build_page([MODEL])

if __name__ == "__main__":
    demo.launch(**launch_options(demo))
