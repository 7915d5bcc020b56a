"""The page: upload, model and clip level, restore with progress, detection result, A/B players,
spectrograms of a chosen region, download. Built with gradio; restorations run in its queue."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import gradio as gr

from declip.app.restoring import Restorer
from declip.app.spectrograms import region_png
from declip.data.audio_files import AUDIO_EXTENSIONS
from declip.data.ffmpeg import FFMPEG_EXTENSIONS
from declip.errors import ConfigError
from declip.zoo.registry import DEFAULT_MODEL, entries

TITLE = "declip: restore clipped audio"
REGION_SECONDS = 5.0
INTRO = (
    f"# {TITLE}\n"
    "Drop a clipped recording (WAV, FLAC, OGG, Opus, MP3), choose a model and the clip level, and restore it. "
    "Compare the input (A) and the restoration (B) by ear and in the spectrograms of a region; "
    "download the restored 32-bit float WAV (the same bytes `declip restore` writes)."
)


def model_choices(models: list[str] | None = None) -> list[str]:
    """The given references first, then the zoo's models (the default first among them)."""
    zoo = sorted(entries(), key=lambda name: (name != DEFAULT_MODEL, name))
    given = [str(m) for m in models or []]
    return given + [name for name in zoo if name not in given]


def _account(name: str, result) -> str:
    clipping = result.clipping
    head = (
        f"**{name}** restored: {result.seconds:.2f} s at {result.sample_rate} Hz"
        if clipping.clipped
        else (f"**{name}**: no clipped sample found; the output is the input unchanged")
    )
    return f"{head}\n\n{clipping.markdown()}\n\n`{result.account}`"


def build_page(models: list[str] | None = None, workdir: str | Path | None = None) -> gr.Blocks:
    """The page for ``models`` (references :func:`declip.load_model` takes; the first is preselected;
    the zoo's models follow). Restored files go under ``workdir`` (default: a temporary folder
    removed at exit)."""
    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="declip-app-")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    restorer = Restorer(workdir)
    choices = model_choices(models)

    def failure(message: str):
        return (
            f"**Error:** {message}", None, None, None, None, None, gr.update(), gr.update(),
        )  # fmt: skip

    def restore(upload, model, level, start, seconds, progress=gr.Progress()):
        if upload is None:
            return failure("pick or drop an audio file first")
        name = Path(upload).name
        try:
            progress(0, desc=f"loading the model {model}")
            restorer.model(model)
        except ConfigError as error:
            return failure(f"model: {error}")
        try:
            progress(0, desc=f"restoring {name}")
            result = restorer.restore(
                upload, model, level,
                progress=lambda done, total: progress((done, total), desc=f"restoring {name}", unit="blocks"),
            )  # fmt: skip
            start = min(float(start or 0), max(result.seconds - 0.1, 0.0))
            png = region_png(result.source, result.output, start, float(seconds or REGION_SECONDS),
                             result.output.with_suffix(".png"))  # fmt: skip
        except ConfigError as error:
            return failure(f"{name}: {error}")
        except Exception as error:  # one failure, one message; the page stays usable
            traceback.print_exc(file=sys.stderr)
            return failure(f"{name}: restoring failed ({type(error).__name__}: {error})")
        state = {"source": str(result.source), "output": str(result.output), "seconds": result.seconds}
        return (
            _account(name, result), gr.update(value=str(result.source), playback_position=start),
            gr.update(value=str(result.output), playback_position=start), str(png), str(result.output), state,
            gr.update(maximum=max(result.seconds, 0.1), value=start), gr.update(),
        )  # fmt: skip

    def show_region(state, start, seconds):
        if not state:
            return gr.skip(), gr.skip(), gr.skip()
        start = min(float(start or 0), max(state["seconds"] - 0.1, 0.0))
        png = Path(state["output"]).with_name(f"region-{start:.3f}-{float(seconds):.3f}.png")
        region_png(state["source"], state["output"], start, float(seconds), png)
        return str(png), gr.update(playback_position=start), gr.update(playback_position=start)

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        gr.Markdown(INTRO)
        with gr.Row():
            upload = gr.File(
                label="clipped recording", file_types=[*AUDIO_EXTENSIONS, *FFMPEG_EXTENSIONS], elem_id="upload"
            )
            with gr.Column():
                model = gr.Dropdown(
                    choices, value=choices[0], allow_custom_value=True, label="model",
                    info="a zoo model, a Hub reference ORG/NAME[@REVISION] or a model folder", elem_id="model",
                )  # fmt: skip
                level = gr.Textbox("auto", label="clip level", info="auto (detected) or a value, e.g. 0.5",
                                   elem_id="level")  # fmt: skip
                button = gr.Button("Restore", variant="primary", elem_id="restore")
        status = gr.Markdown("Drop a file and press Restore.", elem_id="status")
        with gr.Row():
            before = gr.Audio(label="A: input", type="filepath", interactive=False, elem_id="player-input")
            after = gr.Audio(label="B: restored", type="filepath", interactive=False, elem_id="player-restored")
        with gr.Row():
            start = gr.Slider(0, 60, value=0, step=0.05, label="region start (s)", elem_id="region-start")
            seconds = gr.Slider(0.25, 30, value=REGION_SECONDS, step=0.25, label="region length (s)",
                                elem_id="region-length")  # fmt: skip
        spectrogram = gr.Image(label="spectrograms: before / after", type="filepath", interactive=False,
                               elem_id="spectrogram")  # fmt: skip
        download = gr.File(label="restored WAV", interactive=False, elem_id="download")
        state = gr.State(None)
        button.click(
            restore, [upload, model, level, start, seconds],
            [status, before, after, spectrogram, download, state, start, seconds],
            concurrency_limit=1, concurrency_id="restore",
        )  # fmt: skip
        for slider in (start, seconds):
            slider.release(  # always_last: a release while one is drawn is drawn after it, not dropped
                show_region, [state, start, seconds], [spectrogram, before, after], trigger_mode="always_last"
            )
    page.queue(default_concurrency_limit=1)
    page.declip_workdir = Path(workdir)  # for launch(): restored files are served from there
    return page


def launch_options(page: gr.Blocks) -> dict:
    """What :meth:`gradio.Blocks.launch` needs for this page: system fonts (nothing fetched from the
    internet), no server-side rendering, the restored files' folder."""
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return {"theme": theme, "ssr_mode": False, "allowed_paths": [str(page.declip_workdir)]}


def serve(models: list[str] | None = None, host: str | None = "127.0.0.1", port: int | None = None) -> None:
    """Build the page and serve it on ``host``:``port`` until Ctrl-C (``port`` None: gradio's, 7860 or the next
    free one; ``host`` None: gradio's, which a Hugging Face Space sets through GRADIO_SERVER_NAME)."""
    page = build_page(models)
    page.launch(server_name=host, server_port=port, **launch_options(page))
