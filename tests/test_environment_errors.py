"""The environment's failures (disk full, read-only, a file where a directory belongs) give
one line naming the path and exit 2, leave nothing half-written, and never segfault.

Disk full is a real small tmpfs where this process may mount one (root in a container);
elsewhere the same commands run with every atomic publication patched to raise ENOSPC.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, physground

SUITE = """name = "tiny"
seed = 0
models = ["copy-last"]
[defaults]
rollouts = 4
context = 2
horizon = 4
splits = ["test_id"]
[[scenario]]
name = "rigid/projectile"
config = { num_frames = 8, image_size = 48 }
"""

_ENOSPC_MAIN = """
import errno, sys
import physground.atomic as atomic

def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")

atomic.os.replace = full
atomic.os.rename = full
from physground.cli import main
sys.argv[0] = "physground"
main()
"""


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                            capture_output=True)
    return result.returncode == 0


@pytest.fixture
def full_disk(tmp_path):
    """(directory on a nearly full filesystem, how to run the CLI)."""
    disk = tmp_path / "disk"
    if _mount(disk, "size=160k"):
        yield disk, physground
        subprocess.run(["umount", str(disk)], check=False)
        return

    def patched(*args):
        return subprocess.run([sys.executable, "-c", _ENOSPC_MAIN, *args],
                              capture_output=True, text=True, timeout=300)

    disk.mkdir(exist_ok=True)
    yield disk, patched


def _no_temporaries(directory: Path) -> None:
    left = [p for p in directory.rglob(".*") if p.name.endswith((".tmp", ".old"))]
    assert not left, left


def test_generate_on_a_full_disk(full_disk):
    disk, cli = full_disk
    result = cli("generate", "rigid/projectile", "--count", "32", "--config", "render=true",
                 "--config", "image_size=48", "--root", str(disk), "-q")
    assert result.returncode != -11, "segfault"
    assert_one_line_error(result, "disk is full", str(disk))
    _no_temporaries(disk)


def test_run_on_a_full_disk(full_disk, tmp_path):
    disk, cli = full_disk
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    result = cli("run", "--suite", str(suite), "--root", str(disk), "--executor",
                 "sequential", "-q")
    assert_one_line_error(result, "disk is full", str(disk))
    _no_temporaries(disk)


def test_train_on_a_full_disk(full_disk, tmp_path):
    disk, cli = full_disk
    result = cli("train", "--scenario", "rigid/projectile", "--count", "4", "--num-frames",
                 "8", "--steps", "2", "--root", str(tmp_path), "--out",
                 str(disk / "ckpt"), "-q")
    assert_one_line_error(result, "disk is full", str(disk / "ckpt"))
    _no_temporaries(disk)
    assert not (disk / "ckpt").exists()  # nothing half-written


def test_read_only_root(tmp_path):
    ro = tmp_path / "ro"
    if not _mount(ro, "ro,size=64k"):
        pytest.skip("mounting a read-only tmpfs is not permitted here")
    try:
        result = physground("generate", "rigid/projectile", "--count", "2", "--root",
                            str(ro), "-q")
        assert_one_line_error(result, "read-only", str(ro))
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_root_that_is_a_file_and_out_that_is_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = physground("generate", "rigid/projectile", "--count", "2", "--root", str(afile))
    assert_one_line_error(result, str(afile))
    result = physground("generate", "rigid/projectile", "--count", "2", "--root",
                        str(tmp_path / "r"), "--out", str(afile), "-q")
    assert_one_line_error(result, str(afile))
    assert afile.read_text() == "x"
