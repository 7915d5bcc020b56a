"""``declip app``: a local web page to restore a recording and compare it with the input (gradio)."""

from declip.app.page import build_page, launch_options, serve

__all__ = ["build_page", "launch_options", "serve"]
