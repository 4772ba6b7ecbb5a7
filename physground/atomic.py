"""Atomic file writes: write to a temp file in the same directory, fsync, rename."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``path`` atomically, else vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        _name_path(err, path)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _name_path(err: OSError, path: Path) -> None:
    """Let a write error without a file name (ENOSPC from write(), HDF5's errors) name the
    file being written instead of its temporary."""
    if err.filename is None or is_temporary(Path(str(err.filename)).name):
        err.filename = str(path)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_json_atomic(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


# ---------------------------------------------------------------------------- directories

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the platform or filesystem cannot."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # pragma: no cover - not glibc >= 2.28
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # filesystem without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish_directory(tmp: Path, path: Path) -> None:
    """Make the finished directory ``tmp`` appear at ``path`` in one rename.

    A new ``path`` is a plain rename; an existing one is swapped with ``tmp`` atomically
    (readers see the old or the new directory, never a mix) and the old content, now at
    ``tmp``, is deleted. Where the filesystem cannot swap, the old directory is first moved
    aside to ``.<name>.<id>.old`` (restored by `remove_stale_temporaries` if a kill falls
    between the two renames).
    """
    tmp, path = Path(tmp), Path(path)
    if not path.exists():
        os.rename(tmp, path)
    elif _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)
    else:  # pragma: no cover - filesystems without RENAME_EXCHANGE
        old = tmp.with_name(tmp.name[: -len(".tmp")] + ".old")
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_directory(path: Path, *, keep_others: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success its files are
    fsynced and it replaces ``path`` in one rename (`publish_directory`), else it vanishes.

    ``keep_others``: entries of the old ``path`` that the new version does not write (live
    logs such as TensorBoard event files, still open for appending) are moved into it just
    before publication, so they survive the swap (moved back if publication fails).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    moved: list[str] = []
    try:
        yield tmp
        for file in tmp.iterdir():
            if file.is_file():
                with open(file, "rb") as fh:
                    os.fsync(fh.fileno())
        _fsync_dir(tmp)
        os.chmod(tmp, 0o777 & ~_UMASK)
        if keep_others and path.is_dir():
            for entry in sorted(os.listdir(path)):
                if not (tmp / entry).exists():
                    os.rename(path / entry, tmp / entry)
                    moved.append(entry)
        try:
            publish_directory(tmp, path)
        except BaseException:
            for entry in moved:
                with contextlib.suppress(OSError):
                    os.rename(tmp / entry, path / entry)
            raise
    except OSError as err:
        _name_path(err, path)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary of `atomic_path` or `atomic_directory`."""
    return name.startswith(".") and name.endswith((".tmp", ".old"))


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Delete the temporaries that interrupted writes left under ``root``; returns them.

    Call only while holding the root's lock (`physground.lock`), so that no live writer's
    temporary is removed. A directory moved aside by `publish_directory` whose new version
    never arrived is moved back instead of deleted.
    """
    removed: list[Path] = []
    root = Path(root)
    if not root.is_dir():
        return removed
    for parent, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            if not is_temporary(name):
                continue
            stale = Path(parent) / name
            if name.endswith(".old"):
                original = stale.with_name(name[1:].rsplit(".", 2)[0])
                if not original.exists():
                    os.rename(stale, original)
                    continue
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
        dirs[:] = [d for d in dirs if not is_temporary(d)]
    return removed
