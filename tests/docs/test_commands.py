"""Every shell command in README.md and docs/*.md runs here, with small settings, or is marked not run.

Each command of a fenced ```bash block matches one rule of ``RULES`` (its program and first
arguments) and runs in a sandbox laid out like the repository (configs/, benchmarks/, a tiny
data/music and data/stems, ../shared/benchmarks/sqam, concert.wav, RUN/checkpoints/), with that
rule's substitutions: fewer steps, batches, minutes and items, never another flag or config key, so
a renamed flag or key fails here. A command no rule matches fails ``test_every_command_is_run_or_marked``:
add a rule, or mark it (``<!-- not run: REASON -->`` on the line before its block, or
``# not run: REASON`` after the command) when it needs what CI lacks (a GPU, the network, hours).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.commands import Command, documented_commands
from tests.sandbox import clipped_recording, music_corpus, sqam_excerpts

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TINY_FIT = "--trainer.max_steps=2 --trainer.enable_progress_bar=false"
TINY_SYNTHETIC = (
    f"{TINY_FIT} --model.backbone.init_args.hidden=32 --data.init_args.val_size=7 --data.init_args.test_size=7"
)
TINY_MUSIC = (
    f"{TINY_FIT} --data.init_args.batch_size=2 --data.init_args.num_workers=0 --data.init_args.val_items=2"
    " --trainer.val_check_interval=2"  # validates at the end, so the configs' latest-step checkpoints are written
)
# placeholders the docs use, as the sandbox names them
PLACEHOLDERS = [
    (r"\b(RUN2|SUP|MC)/", "RUN/"),
    (r"\bCKPT\b", "RUN/checkpoints/last.ckpt"),
    (r"latest-step20000\.ckpt", "latest-step2.ckpt"),  # the config's checkpoint name after the sandbox's 2 steps
    (r"\bMODEL\b", "unet-music-reclip-s4"),
    (r"\bLOSSES\.yaml\b", "configs/adapt.yaml"),
    (r"\[(--[^\]]*)\]", r"\1"),  # a synopsis' optional flags: given
]


@dataclass(frozen=True)
class Rule:
    """Commands starting with ``start`` (after any ``VAR=value``) run with ``subs`` applied and ``append`` added."""

    start: str
    subs: tuple[tuple[str, str], ...] = ()
    append: str = ""

    def matches(self, command: str) -> bool:
        return re.match(r"(\w+=\S+\s+)*" + re.escape(self.start), command) is not None

    def apply(self, command: str) -> str:
        for pattern, replacement in PLACEHOLDERS + list(self.subs):
            command = re.sub(pattern, replacement, command)
        return f"{command} {self.append}".strip()


STEPS = (r"--steps \d+", "--steps 2")
RULES = [
    # the install is CI's own first step
    Rule("python3 -m pip install -e . && declip fit --config configs/synthetic", ((r".* && ", ""),), TINY_SYNTHETIC),
    Rule("declip fit --config configs/synthetic", append=TINY_SYNTHETIC),
    Rule("declip test --config configs/synthetic", append=TINY_SYNTHETIC),
    Rule("declip fit --config configs/music", append=TINY_MUSIC),
    # the restore commands are alternatives writing one output: each replaces the last one's
    Rule("declip restore", ((r"--adapt \d+", "--adapt 2"),), "--overwrite"),
    Rule("declip adapt", append="--steps 2"),
    Rule("declip zoo list"),
    Rule("declip zoo export"),
    Rule("declip zoo blend"),
    Rule("declip bench sqam", append="--levels 20"),
    Rule(
        "python benchmarks/loader_throughput.py",
        ((r"--batches \d+", "--batches 3"), (r"--steps \d+", "--steps 1")),
        "--workers 0",
    ),
    Rule(
        "python benchmarks/stream_throughput.py",
        ((r"--tracks \d+", "--tracks 2"), (r"--batches \d+", "--batches 3"), (r"--steps \d+", "--steps 1")),
    ),
    Rule("python benchmarks/restore_speed.py --network", append="--chunk-seconds 0.5 --batch-size 2"),
    Rule("python benchmarks/restore_speed.py", ((r"--minutes( [\d.]+)+", "--minutes 0.02"),)),
    Rule("python benchmarks/train_throughput.py", (STEPS,), "--warmup 1 --set data.init_args.num_workers=0"),
    Rule(
        "python benchmarks/synthetic_experiment.py",
        (STEPS, (r"--runs /tmp/\S+", "--runs runs/synthetic")),
        "--regimes mc --test-size 70 --model.backbone.init_args.hidden=32 --data.init_args.val_size=8",
    ),
    Rule("python benchmarks/music_eval.py", append="--test-items 7"),
    Rule(
        "python benchmarks/heldout_eval.py",
        ((r"--per-level \d+", "--per-level 1"), (r"--seconds [\d.]+", "--seconds 0.5")),
        "--levels 20",
    ),
    Rule("python benchmarks/adapt_sqam.py", (STEPS, (r"--levels [\d,]+", "--levels 20")), "--files 1"),
    Rule("python benchmarks/make_speech.py", append="--files 6 --words 6"),
    Rule("python benchmarks/adapt_domain.py", (STEPS,), "--eval 1 --levels 20"),
    Rule('python -c "import torch; from torch.utils.flop_counter import FlopCounterMode'),
]


def rule_for(command: Command) -> Rule | None:
    return next((rule for rule in RULES if rule.matches(command.text)), None)


ALL = [command for doc in DOCS for command in documented_commands(doc, ROOT)]


def test_every_command_is_run_or_marked():
    assert ALL, "no ```bash blocks found in README.md and docs/"
    unmarked = [f"{c.where}: {c.text}" for c in ALL if c.not_run is None and rule_for(c) is None]
    assert not unmarked, (
        "documented commands neither run by a rule in tests/docs/test_commands.py nor marked "
        "'<!-- not run: REASON -->' / '# not run: REASON':\n" + "\n".join(unmarked)
    )
    unexplained = [c.where for c in ALL if c.not_run == ""]
    assert not unexplained, f"'not run:' without a reason at {unexplained}"


def test_the_parser_joins_continuations_and_reads_marks(tmp_path):
    doc = tmp_path / "guide.md"
    doc.write_text(
        "```bash\n# a comment line\ndeclip fit --config a.yaml \\\n    --x=1   # trains\n"
        "declip zoo push OUT  # slow; not run: needs the network\n"
        "python -c \"import os\nprint('# not a comment')\"\n```\n\n"
        "<!-- not run: needs a GPU -->\n```bash\ndeclip fit --trainer.accelerator=gpu\n```\n"
    )
    found = documented_commands(doc, tmp_path)
    assert [(c.line, c.text, c.not_run) for c in found] == [
        (3, "declip fit --config a.yaml --x=1", None),
        (5, "declip zoo push OUT", "needs the network"),
        (6, "python -c \"import os\nprint('# not a comment')\"", None),
        (12, "declip fit --trainer.accelerator=gpu", "needs a GPU"),
    ]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A folder with what the documented commands read, as the repository and ../shared lay it out."""
    top = tmp_path_factory.mktemp("docs")
    common = top / "common"
    music_corpus(common / "data/music", {"train": ["t0", "t1"], "valid": ["v0"],
                                         "test": ["nexuiz-sixtyfour", "nexuiz-stairs"]})  # fmt: skip
    music_corpus(common / "data/stems", {"train": ["bach0"], "valid": ["bach1"], "test": ["bach2"]}, seed=9)
    sqam_excerpts(top / "shared/benchmarks/sqam", files=1)
    clipped_recording(common / "concert.wav")
    for index in range(2):
        clipped_recording(common / f"concert-recordings/take{index}.wav", seed=index)
    (common / "scores.json").write_text('{"held-out music": {"1": 3.5, "20": 4.5}}\n')
    for name in ("configs", "benchmarks"):
        (common / name).symlink_to(ROOT / name)
    bin_dir = common / ".bin"  # `python` and `declip` from this interpreter
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    fit = f"declip fit --config configs/music-reclip-only.yaml {TINY_MUSIC} --trainer.default_root_dir=RUN"
    result = run(fit, common)
    assert result.returncode == 0, result.stderr[-3000:]
    (common / "RUN/checkpoints").symlink_to(next((common / "RUN").glob("lightning_logs/version_*/checkpoints")))
    return top


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    bin_dirs = [str(cwd / ".bin"), str(Path(sys.executable).parent)]
    env = os.environ | {"PATH": os.pathsep.join([*bin_dirs, os.environ.get("PATH", "")]), "WANDB_MODE": "offline",
                        "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}  # fmt: skip
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_commands_run(doc, sandbox):
    """The file's commands in order, in a folder of their own (so ``lightning_logs/version_0`` is the
    file's first run), each with its rule's small settings."""
    work = sandbox / doc.stem
    shutil.copytree(sandbox / "common", work, symlinks=True)
    commands = [c for c in documented_commands(doc, ROOT) if c.not_run is None and rule_for(c) is not None]
    if not commands:
        pytest.skip(f"{doc.name} has no command to run")
    if any("make_speech.py" in c.text for c in commands) and shutil.which("flite") is None:
        pytest.fail("flite is not installed (benchmarks/make_speech.py needs it; .ci/run installs it)")
    failures, done = [], set()
    for command in commands:
        text = rule_for(command).apply(command.text)
        if text in done:
            continue
        done.add(text)
        result = run(text, work)
        if result.returncode != 0:
            failures.append(f"{command.where}: {text}\n  exit {result.returncode}: {result.stderr.strip()[-1500:]}")
    assert not failures, "documented commands failed (run with small settings):\n" + "\n".join(failures)
