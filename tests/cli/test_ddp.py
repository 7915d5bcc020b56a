"""Real two-process DDP runs on CPU (gloo), launched the way users launch them."""

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from declip.training import DeclipModule

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = {
    "lightning": [sys.executable, "-m", "declip"],  # Lightning starts the second process
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "declip"],
}
SYNTHETIC = ["--model.backbone.init_args.hidden=32", "--data.init_args.val_size=8"]
TIMEOUT = 300  # seconds; a run takes about 20


def _descendants(root: int) -> list[int]:
    """``root`` and every process under it, from /proc (torchrun starts each rank in a session of its own, so a
    process group would miss them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # a process that ended while we looked
            pid, rest = stat.read_text().split(" (", 1)
            children.setdefault(int(rest.rsplit(")", 1)[1].split()[1]), []).append(int(pid))  # ppid after "(comm)"
    found, todo = [], [root]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def _command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return "(ended)"


def _signal(pids: list[int], number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)


def _no_core_files() -> None:  # SIGABRT below must not leave core files behind
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run(command: list[str], cwd: Path) -> tuple[int, str]:
    """Run a launch to its end: ``(return code, its output)``. One still going after :data:`TIMEOUT` s fails the test
    with every process's stacks: each runs with faulthandler, and the launcher, the ranks and the loader workers all
    get SIGABRT, on which faulthandler prints every thread, then SIGKILL. The output goes to a file, so a process
    left behind cannot hold the test up, and none outlives the test."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "PYTHONUNBUFFERED": "1"}
    log = cwd / "launch.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_no_core_files
        )
    hung: list[str] = []
    try:
        process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pids = _descendants(process.pid)
        hung = [f"{pid}: {_command_line(pid)}" for pid in pids]
        _signal(pids, signal.SIGABRT)
        time.sleep(10)  # time to print the stacks
        _signal(pids, signal.SIGKILL)
    finally:
        if process.poll() is None:  # interrupted, or still there after SIGKILL's snapshot
            _signal(_descendants(process.pid), signal.SIGKILL)
        process.wait()
    output = log.read_text(errors="replace")
    if hung:
        processes = "\n".join(hung)
        pytest.fail(
            f"DDP run still going after {TIMEOUT} s; its processes:\n{processes}\nits output and stacks:\n{output}"
        )
    return process.returncode, output


def _fit(launcher: str, config: str, extra: list[str], tmp_path: Path) -> Path:
    command = [
        *LAUNCHERS[launcher], "fit", "--config", str(ROOT / config),
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
        "--trainer.max_steps=4", "--trainer.val_check_interval=2", "--trainer.enable_progress_bar=false",
        "--trainer.callbacks=[{class_path: lightning.pytorch.callbacks.ModelCheckpoint, init_args: {save_last: true}}]",
        f"--trainer.default_root_dir={tmp_path}", "--data.init_args.batch_size=4", *extra,
    ]  # fmt: skip
    code, output = _run(command, tmp_path)
    assert code == 0, output[-3000:]
    assert "distributed_backend=gloo" in output and "GLOBAL_RANK: 1" in output
    return tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_ddp_fit_on_two_cpu_processes_trains_and_checkpoints(launcher, tmp_path):
    last = _fit(launcher, "configs/synthetic.yaml", SYNTHETIC, tmp_path)
    assert torch.load(last, weights_only=False)["global_step"] == 4
    assert DeclipModule.load_from_checkpoint(last).regime == "mc+ei"


def test_ddp_fit_on_real_audio_with_loader_workers(musdb, tmp_path):
    extra = [
        "--model.backbone.init_args.widths=[4, 8]",
        f"--data.init_args.corpus.init_args.root={musdb}",
        "--data.init_args.corpus.init_args.valid_fraction=0.25",
        "--data.init_args.num_workers=1",
        "--data.init_args.val_items=8",
    ]
    last = _fit("lightning", "configs/music.yaml", extra, tmp_path)
    assert torch.load(last, weights_only=False)["global_step"] == 4
    assert (musdb / "declip-split.json").exists()
