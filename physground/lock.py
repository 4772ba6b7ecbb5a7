"""One process per runs root: an exclusive file lock naming its holder, taken at start.

Two `physground run`s on one root would do all the work twice and interleave their writes;
the second one stops at once with the holder's PID instead. The lock is ``<root>/.lock``
held with ``flock`` (released by the kernel however the holder ends, so a killed run never
leaves a stale lock); the file keeps the holder's PID for the message. Once the lock is
held, the temporaries of interrupted writes are removed
(`physground.atomic.remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from physground.atomic import remove_stale_temporaries
from physground.errors import PhysgroundError

LOCK = ".lock"
_HELD: set[Path] = set()  # roots this process holds (re-entrant: run inside run)


class RootBusyError(PhysgroundError):
    """Another process holds the lock of the runs root."""


@contextlib.contextmanager
def root_lock(root: Path) -> Iterator[list[Path]]:
    """Hold ``root``'s lock for the block; yields the stale temporaries it removed."""
    root = Path(root).resolve()
    if root in _HELD:
        yield []
        return
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RootBusyError(
                f"{root} is in use by physground process {holder} (lock {path}); wait for it "
                "to finish, stop it, or use another --root"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.add(root)
        try:
            yield remove_stale_temporaries(root)
        finally:
            _HELD.discard(root)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)
