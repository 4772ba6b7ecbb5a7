"""Fail points for fault-injection tests: ``PHYSGROUND_FAILPOINT=NAME`` makes the process
kill itself (SIGKILL, as ``kill -9`` would) the first time it reaches `failpoint` NAME.

Used by ``tests/test_faults.py`` to interrupt a run at exact places (mid-shard,
mid-checkpoint, between tasks); a no-op (one environment lookup) otherwise.
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    """Die here when ``PHYSGROUND_FAILPOINT`` names this point."""
    if os.environ.get("PHYSGROUND_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
