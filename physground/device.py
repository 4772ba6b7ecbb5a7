"""Device selection shared by torch and Warp: CPU by default, CUDA when present."""

from __future__ import annotations

from physground.errors import ValidationError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; validates explicit names."""
    device = device or "auto"
    base = device.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise ValidationError(f"device '{device}' is not one of {DEVICE_CHOICES} (or cuda:N)")
    import torch

    if base == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if base == "cuda" and not torch.cuda.is_available():
        raise ValidationError(f"device '{device}' requested but torch sees no CUDA device")
    return device


def warp_device(device: str) -> str:
    """The Warp name of a resolved torch device (Warp uses 'cuda:0', torch 'cuda')."""
    return "cuda:0" if device == "cuda" else device
