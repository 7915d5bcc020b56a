"""Inference precision: float32, or bfloat16 autocast where the hardware runs it natively.

bfloat16 runs the default model's convolutions about 2.5 times faster on CPUs with AMX or
AVX-512 BF16 (and on recent GPUs) at no measurable cost in SDR (``docs/benchmarks.md``). Some
oneDNN bfloat16 kernels return wrong values (strided convolutions with few input channels on
this project's CPU); every model is therefore checked against float32 on a probe before
bfloat16 is used, and falls back to float32 when they disagree.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from declip.errors import ConfigError
from declip.physics import Clipping

PRECISIONS = ("auto", "fp32", "bf16")
PROBE_TOLERANCE = 0.02  # relative error of the bf16 correction against fp32 (bf16 itself gives ~0.005)


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively (not emulated, hence faster)."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str) -> Iterator[None]:
    """Run the block in ``precision`` (``"fp32"`` or ``"bf16"``) on ``device``."""
    device = torch.device(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        yield


@torch.inference_mode()
def bf16_error(model: nn.Module, channels: int, device: torch.device | str, length: int = 1 << 15) -> float:
    """Relative error of ``model``'s bfloat16 correction against float32 on a clipped probe signal."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(length) / 44100
    tones = sum(torch.sin(2 * torch.pi * f * t + torch.rand(1, generator=generator) * 6) for f in (110, 440, 1750))
    x = (tones / 3 + 0.05 * torch.randn(channels, length, generator=generator))[None].to(device)
    physics = Clipping(torch.tensor(0.3, device=device))
    y = physics(x)
    reference = model(y, physics) - y
    with autocast(device, "bf16"):
        fast = model(y, physics).float() - y
    return float((fast - reference).norm() / reference.norm().clamp_min(1e-12))


def gains_from_bf16(model: nn.Module) -> bool:
    """False for a backbone marked ``float32_only`` (its own arithmetic is float32 under autocast too)."""
    return not getattr(getattr(model, "backbone", model), "float32_only", False)


def resolve(precision: str, model: nn.Module, channels: int, device: torch.device | str) -> str:
    """``"fp32"`` or ``"bf16"``: ``auto`` picks bf16 where the device runs it natively and the model's
    bf16 output agrees with fp32 on a probe (never for a backbone that computes in float32 whatever it is asked:
    it would gain nothing and pay the probe); an explicit ``bf16`` that disagrees is refused."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if precision == "fp32" or (precision == "auto" and not (native_bf16(device) and gains_from_bf16(model))):
        return "fp32"
    error = bf16_error(model, channels, device)
    if error <= PROBE_TOLERANCE:
        return "bf16"
    message = f"this model's bfloat16 output differs from float32 by {100 * error:.1f} % on {device}"
    if precision == "bf16":
        raise ConfigError(f"{message}; use --precision fp32")
    warnings.warn(f"{message}: using float32", stacklevel=2)
    return "fp32"
