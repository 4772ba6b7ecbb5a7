"""Fail points for fault-injection tests: ``PHYSGROUND_FAILPOINT=NAME`` (or ``NAME@K``)
makes the process kill itself (SIGKILL, as ``kill -9`` would) the first (K-th) time it
reaches `failpoint` NAME.

Used by ``tests/test_faults.py`` to interrupt a run at exact places (mid-shard,
mid-checkpoint, between tasks); a no-op (one environment lookup) otherwise.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_REACHED: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Die here when ``PHYSGROUND_FAILPOINT`` names this point (and its count is reached)."""
    wanted = os.environ.get("PHYSGROUND_FAILPOINT")
    if not wanted:
        return
    point, _, count = wanted.partition("@")
    if point != name:
        return
    _REACHED[name] += 1
    if _REACHED[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
