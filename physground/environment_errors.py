"""Failures of the environment (disk full, read-only, permissions, a file where a directory
belongs) and stop signals, turned into one line for the CLI.

Writes are atomic (`physground.atomic`), so after any of these nothing is half-written:
rerunning the command once the cause is fixed resumes from the finished work.
"""

from __future__ import annotations

import errno
import re
import signal
from typing import Any

_HINTS = {
    errno.ENOSPC: "the disk is full: free space or use another --root/--out, then rerun "
                  "(finished work is kept)",
    errno.EDQUOT: "the disk quota is exceeded: free space or use another --root/--out",
    errno.EROFS: "the filesystem is read-only: use a writable --root/--out",
    errno.EACCES: "permission denied: use a directory you can write, or fix its permissions",
    errno.EPERM: "operation not permitted: use a directory you can write",
    errno.ENOTDIR: "a part of the path is a file, not a directory: use another path",
    errno.EISDIR: "it is a directory where a file was expected: use another path",
    errno.EEXIST: "it already exists: remove it or use another path",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "the path is too long",
}


def _errno_of(err: OSError) -> int | None:
    if err.errno is not None:
        return err.errno
    # h5py/HDF5 report write failures as OSError without errno, the cause in the text
    match = re.search(r"errno = (\d+)", str(err))
    if match:
        return int(match.group(1))
    return errno.ENOSPC if "No space left on device" in str(err) else None


def describe_os_error(err: OSError) -> str:
    """One line: the path, what went wrong and what to do."""
    code = _errno_of(err)
    path = err.filename or getattr(err, "physground_path", None)
    where = f"{path}: " if path else ""
    if code in _HINTS:
        return f"{where}{_HINTS[code]}"
    text = " ".join((err.strerror or str(err)).split())
    return f"{where}{text}"


class Stopped(BaseException):  # noqa: N818 - a stop request, not an error
    """SIGINT or SIGTERM arrived (a BaseException: no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped(signum)


def stop_on_signals() -> None:
    """Raise `Stopped` in the main thread on SIGINT and SIGTERM."""
    signal.signal(signal.SIGINT, _raise_stopped)
    signal.signal(signal.SIGTERM, _raise_stopped)
