"""Train :class:`~declip.detection.coded_mask.ClipMaskNet`: which samples of a coded recording were clipped.

Each training pair is a one-second window of a corpus track, hard-clipped at a random input SDR (1-20
dB, or the ranges ``--sdr`` gives), then coded by a real encoder (LAME MP3 at 96-256 kbps or libopus at
64-160 kbps, through libsndfile, or with ``--codecs ... aac`` FFmpeg's AAC at 96-256 kbps through PyAV);
the input is the coded window over the level the encoder leaves (``g θ``), the label is the clipped
window's plateaus. No clean audio enters the labels: a folder of hard-clipped recordings would give the
same pairs.

    python -m declip.training.coded_mask --music data/music --items 8000 --steps 6000 --codecs mp3 opus aac \
        --pairs pairs.safetensors --out base.safetensors
    python -m declip.training.coded_mask --music data/music --items 8000 --steps 3000 --codecs mp3 opus aac \
        --pairs pairs.safetensors --init base.safetensors --grow 64 128 256 --margin 512 --lr 5e-4 \
        --out declip/detection/coded_mask.safetensors  # the shipped network: the first, grown and trained on

``--init WEIGHTS`` fine-tunes a trained network instead of starting from random weights (``--lr``: its peak
learning rate); ``--grow 64 128 256`` appends blocks of those dilations to it first (a wider receptive field,
starting from the same output), and ``--margin`` keeps the crops' zero-padded edges out of the loss. ``--pairs
FILE`` keeps the drawn pairs, so a second run on the same windows skips the coding.
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from declip.data.codecs import ENCODER_GAINS, code
from declip.detection.coded_mask import ClipMaskNet, load_mask_net, save_mask_net
from declip.physics import Clipping, threshold_for_sdr

BITRATES = {"mp3": (96, 128, 160, 192, 256), "opus": (64, 96, 128, 160), "aac": (96, 128, 160, 192, 256)}
PAD = 0.1  # seconds coded on each side of a window and dropped (the codec's start and end)


def coded_pairs(
    files: Sequence[str | Path],
    count: int,
    seed: int,
    seconds: float = 1.0,
    codecs: Sequence[str] = ("mp3", "opus"),
    sdrs: Sequence[tuple[float, float]] = ((1.0, 20.0),),
) -> tuple[Tensor, Tensor]:
    """``count`` pairs ``(u, clipped)``, each ``(count, frames)``: ``u = y / (g θ)`` of a coded clipped
    window and its plateau mask (bool), from random windows of ``files`` (one random channel) clipped at an
    input SDR drawn uniformly from one of the ranges ``sdrs`` (dB; the range drawn first), each coded by one
    of ``codecs`` (keys of :data:`BITRATES`) at one of its bit rates."""
    rng = random.Random(seed)
    infos = {str(f): sf.info(f) for f in files}
    inputs, labels = [], []
    while len(inputs) < count:
        file = rng.choice(list(infos))
        info = infos[file]
        frames, pad = int(seconds * info.samplerate), int(PAD * info.samplerate)
        if info.frames < frames + 2 * pad:
            continue
        start = rng.randrange(info.frames - frames - 2 * pad + 1)
        audio, rate = sf.read(file, dtype="float32", always_2d=True, start=start, frames=frames + 2 * pad)
        x = audio[:, rng.randrange(audio.shape[1])][:, None]
        if float(np.sqrt(np.mean(x**2))) < 1e-3:  # near silence: nothing to clip
            continue
        sdr_range = sdrs[0] if len(sdrs) == 1 else rng.choice(list(sdrs))  # one range: the draws of before
        theta = float(threshold_for_sdr(torch.from_numpy(x.T.copy())[None], rng.uniform(*sdr_range)))
        clipped = np.clip(x, -theta, theta)
        codec = rng.choice(sorted(codecs))
        y = code(clipped, rate, codec, rng.choice(BITRATES[codec]))[pad:-pad, 0]
        plateaus = Clipping.at_level(theta, 1).masks(torch.from_numpy(clipped[pad:-pad, 0])[None]).clipped[0]
        inputs.append(torch.from_numpy(y / (ENCODER_GAINS[codec] * theta)).float())
        labels.append(plateaus)
    return torch.stack(inputs), torch.stack(labels)


def mask_errors(net: ClipMaskNet, u: Tensor, clipped: Tensor, batch: int = 50) -> float:
    """Wrong samples (either way) per clipped sample over the pairs."""
    wrong = 0
    with torch.no_grad():
        for i in range(0, len(u), batch):
            wrong += int(((net(u[i : i + batch, None])[:, 0] > 0) != clipped[i : i + batch]).sum())
    return wrong / max(int(clipped.sum()), 1)


def train_mask_net(
    train: tuple[Tensor, Tensor],
    valid: tuple[Tensor, Tensor],
    steps: int,
    batch: int = 64,
    frames: int = 1024,
    lr: float = 2e-3,
    seed: int = 0,
    log_every: int = 250,
    init: ClipMaskNet | None = None,
    margin: int = 0,
) -> ClipMaskNet:
    """A network trained ``steps`` Adam steps (one-cycle) on random ``frames``-sample crops of the
    ``train`` pairs, flipped in sign at random and scaled by a 1 % level error; binary cross-entropy
    weighted towards samples over 30 % of the level; from a copy of ``init`` when given (fine-tuning).
    ``margin``: samples on each side of a crop the network reads but the loss leaves out, so scored samples
    see audio, not zero padding, within ``margin`` (crops are ``frames + 2 margin`` long; at the network's
    context, all of it). Prints the valid pairs' errors as it goes."""
    torch.manual_seed(seed)
    u_all, m_all = train[0], train[1].float()
    net = ClipMaskNet() if init is None else copy.deepcopy(init).train().requires_grad_(True)
    scored = slice(margin, margin + frames)
    frames += 2 * margin
    optimizer = torch.optim.Adam(net.parameters(), lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    start = time.time()
    for step in range(steps):
        item = torch.randint(len(u_all), (batch,))
        offset = torch.randint(u_all.shape[1] - frames + 1, (batch,))
        u = torch.stack([u_all[i, o : o + frames] for i, o in zip(item, offset)])[:, None]
        m = torch.stack([m_all[i, o : o + frames] for i, o in zip(item, offset)])[:, None]
        sign = torch.randint(0, 2, (batch, 1, 1)).float() * 2 - 1
        u = u * sign * torch.exp(0.01 * torch.randn(batch, 1, 1))
        weight = (u.abs() > 0.3).float() + 0.05
        loss = F.binary_cross_entropy_with_logits(net(u)[..., scored], m[..., scored], reduction="none")
        loss = (loss * weight[..., scored]).sum() / weight[..., scored].sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            net.eval()
            errors = mask_errors(net, *valid)
            net.train()
            print(f"step {step + 1}: loss {loss.item():.4f}, valid errors per clipped sample {errors:.4f}, "
                  f"{time.time() - start:.0f} s", flush=True)  # fmt: skip
    return net.eval()


def _pairs(args: argparse.Namespace, train_files: list[Path], valid_files: list[Path]) -> tuple[tuple, tuple]:
    """The training and validation pairs: drawn, or read from ``args.pairs`` when it holds pairs drawn
    with the same settings (written there after drawing)."""
    sdrs = [tuple(r) for r in args.sdr or [(1.0, 20.0)]]
    drawn = {"music": str(Path(args.music).resolve()), "items": str(args.items), "valid_items": str(args.valid_items),
             "seed": str(args.seed), "codecs": " ".join(sorted(args.codecs)), "sdr": repr(sdrs)}  # fmt: skip
    if args.pairs and Path(args.pairs).exists():
        with safe_open(args.pairs, "pt") as f:
            cached = f.metadata() or {}
        if cached != drawn:
            differ = ", ".join(f"{k} {cached.get(k)} (asked: {v})" for k, v in drawn.items() if cached.get(k) != v)
            raise SystemExit(f"{args.pairs}: pairs drawn with other settings ({differ}); give another --pairs file")
        pairs = load_file(args.pairs)
        return (pairs["train_u"], pairs["train_m"]), (pairs["valid_u"], pairs["valid_m"])
    train = coded_pairs(train_files, args.items, args.seed, codecs=args.codecs, sdrs=sdrs)
    valid = coded_pairs(valid_files, args.valid_items, args.seed + 1, codecs=args.codecs)
    if args.pairs:
        pairs = {"train_u": train[0], "train_m": train[1], "valid_u": valid[0], "valid_m": valid[1]}
        save_file(pairs, args.pairs, metadata=drawn)
    return train, valid


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--music", default="data/music", help="a corpus with train/ and valid/ track folders")
    parser.add_argument("--items", type=int, default=4000, help="training pairs (one second each)")
    parser.add_argument("--valid-items", type=int, default=400)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--codecs", nargs="+", default=["mp3", "opus"], choices=sorted(BITRATES))
    parser.add_argument(
        "--sdr", nargs=2, type=float, action="append", metavar=("LOW", "HIGH"),
        help="input SDR range (dB) of the training pairs (default 1 20; repeated: one range drawn per pair); "
        "validation pairs: always 1-20 dB",
    )  # fmt: skip
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (one-cycle)")
    parser.add_argument("--init", help="start from these weights (a .safetensors of ClipMaskNet): fine-tuning")
    parser.add_argument(
        "--grow", nargs="+", type=int, default=[], metavar="DILATION",
        help="with --init: append blocks of these dilations (their residual branches start at zero, so the grown "
        "network starts with --init's output) for a wider receptive field",
    )  # fmt: skip
    parser.add_argument("--margin", type=int, default=0, help="samples each side of a crop left out of the loss")
    parser.add_argument(
        "--pairs", help="cache of the pairs (.safetensors): read when it exists (drawn with the same settings), "
        "else drawn and written",
    )  # fmt: skip
    parser.add_argument("--out", default="coded_mask.safetensors")
    args = parser.parse_args(argv)
    music = Path(args.music)
    train_files, valid_files = sorted(music.glob("train/*/mixture.*")), sorted(music.glob("valid/*/mixture.*"))
    if not train_files or not valid_files:
        raise SystemExit(f"{music}: no train/*/mixture.* or valid/*/mixture.* tracks; build it with declip data build")
    if args.grow and not args.init:
        raise SystemExit("--grow appends blocks to a trained network: give it with --init WEIGHTS")
    started = time.time()
    train, valid = _pairs(args, train_files, valid_files)
    band = int(((valid[0].abs() >= 0.97) != valid[1]).sum()) / max(int(valid[1].sum()), 1)
    print(f"{len(train[0])} + {len(valid[0])} pairs in {time.time() - started:.0f} s; "
          f"a band at 97 % of the level errs {band:.4f} per clipped sample", flush=True)  # fmt: skip
    init = load_mask_net(args.init) if args.init else None
    if init is not None:
        print(f"{args.init}: valid errors per clipped sample {mask_errors(init, *valid):.4f} before", flush=True)
    if args.grow:
        init = init.grown(tuple(args.grow))
    net = train_mask_net(train, valid, args.steps, lr=args.lr, seed=args.seed, init=init, margin=args.margin)
    save_mask_net(net, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
