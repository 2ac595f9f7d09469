"""Helpers for the Ray tests: a short temporary directory for Ray's files, and the processes Ray left in it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def ray_processes(temp_dir: str) -> list[int]:
    """Processes of the Ray instance (or cluster) whose files are in ``temp_dir``: those whose command line names it,
    or which were started with it as ``RAY_TMPDIR`` (Ray's agents retitle themselves, e.g. ``ray::DashboardAgent``,
    and keep only the environment they inherited)."""
    name, env = temp_dir.encode(), b"RAY_TMPDIR=" + temp_dir.encode() + b"\0"
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            if name in (proc / "cmdline").read_bytes() or env in (proc / "environ").read_bytes() + b"\0":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@contextmanager
def ray_temp_dir(prefix: str, grace_s: float = 20.0) -> Iterator[str]:
    """A fresh short directory as ``RAY_TMPDIR`` while the block runs (Ray started in it keeps its files there).

    Short, because Ray's socket paths must fit 107 bytes; Ray's default
    temporary directory may not exist on a fresh machine. After the block,
    on failure too, waits up to ``grace_s`` for Ray's processes of this
    directory to end, kills any left and asserts that none was, and removes
    the directory.
    """
    temp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    saved = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    os.makedirs(os.path.join(temp, "ray"), exist_ok=True)
    try:
        yield temp
    finally:
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved
        deadline = time.monotonic() + grace_s
        while ray_processes(temp) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = ray_processes(temp)
        for pid in left:  # ours (they run in our directory): do not leave them running past a failed test
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes survived the shutdown: {left}"
