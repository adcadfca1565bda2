"""Child processes that never outlive their owner."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any


def die_with_parent(sig: int = signal.SIGTERM, owner: int | None = None) -> None:
    """Linux: this process gets ``sig`` when its parent dies (``PR_SET_PDEATHSIG``).

    It fires when the parent THREAD that started this process ends, so start children that
    must live as long as the owner from its main thread. Called after the child started (a
    spawned child imports first), pass ``owner``, the parent's pid: if the owner died before
    the request was made, nothing would ever fire, so the child ends itself at once."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)
    if owner is not None and os.getppid() != owner:
        os.kill(os.getpid(), sig)


def child_pool(
    workers: int, initializer: Callable[..., None], *initargs: Any
) -> ProcessPoolExecutor:
    """Worker processes, spawned (never forked: a parent with threads, such as faust's or an
    api's, must not be copied mid-flight), killed with this process, each set up by
    ``initializer(*initargs)``. Start them from a thread that outlives their use (see
    :func:`die_with_parent`)."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_child,
        initargs=(os.getpid(), initializer, *initargs),
    )


def _start_child(owner: int, initializer: Callable[..., None], *initargs: Any) -> None:
    die_with_parent(signal.SIGKILL, owner)
    initializer(*initargs)


def children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)"
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found
