"""Versions, settings and content hashes recorded in every dataset and result."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

import numpy as np

TRACKED_PACKAGES = ("physground", "numpy", "mujoco", "warp-lang", "torch", "h5py", "scipy")


@cache
def library_versions() -> dict[str, str]:
    """Installed versions of the packages that can change generated data or scores."""
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


PLUGIN_GROUPS = ("physground.scenarios", "physground.models", "physground.metrics")


def plugin_versions() -> dict[str, dict[str, str]]:
    """Installed third-party plugins (entry points of the registries' groups): for each
    ``group:name``, its target and the distribution and version that provide it. A plugin
    can change what ``metrics = "auto"`` resolves to, so runs record (and hash) these."""
    out: dict[str, dict[str, str]] = {}
    for group in PLUGIN_GROUPS:
        for ep in entry_points(group=group):
            dist = getattr(ep, "dist", None)
            out[f"{group}:{ep.name}"] = {
                "target": ep.value,
                "distribution": getattr(dist, "name", None) or "unknown",
                "version": getattr(dist, "version", None) or "unknown",
            }
    return dict(sorted(out.items()))


@cache
def git_revision() -> str | None:
    """The source tree's git commit, when running from a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict[str, Any]:
    """Versions, git revision and machine, for result records."""
    return {
        "versions": library_versions(),
        "git": git_revision(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items())}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"dtype": str(obj.dtype), "shape": list(obj.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float):
        return repr(obj)  # exact, so that 0.1 and 0.1000000001 hash differently
    return obj


def content_hash(obj: Any) -> str:
    """sha256 of a canonical JSON encoding of ``obj`` (dicts sorted, floats exact)."""
    blob = json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
