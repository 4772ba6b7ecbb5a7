"""Device selection shared by torch and Warp: CPU by default, CUDA when present."""

from __future__ import annotations

import os
import sys

from physground.errors import ValidationError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
# Set once the CUDA-absent notice was shown; worker processes inherit it and stay quiet.
NOTICE_ENV = "PHYSGROUND_CUDA_NOTICE_SHOWN"


def notice_cuda_absent() -> None:
    """Tell the user once per run (this process and the workers it starts) that no CUDA
    device is there and everything runs on the CPU."""
    if os.environ.get(NOTICE_ENV):
        return
    os.environ[NOTICE_ENV] = "1"
    print("note: no CUDA device found; running on the CPU", file=sys.stderr)


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; validates explicit names."""
    device = device or "auto"
    base = device.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise ValidationError(f"device '{device}' is not one of {DEVICE_CHOICES} (or cuda:N)")
    import torch

    if base == "auto":
        if torch.cuda.is_available():
            return "cuda"
        notice_cuda_absent()
        return "cpu"
    if base == "cuda" and not torch.cuda.is_available():
        raise ValidationError(f"device '{device}' requested but torch sees no CUDA device")
    return device


def warp_device(device: str) -> str:
    """The Warp name of a resolved torch device (Warp uses 'cuda:0', torch 'cuda')."""
    return "cuda:0" if device == "cuda" else device
