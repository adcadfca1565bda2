"""Child processes that never outlive their owner."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal


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
