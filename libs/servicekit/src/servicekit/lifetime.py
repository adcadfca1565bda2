"""Child processes that never outlive their owner."""

from __future__ import annotations

import contextlib
import ctypes
import signal


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Linux: this process gets ``sig`` when its parent dies (``PR_SET_PDEATHSIG``).

    It fires when the parent THREAD that started this process ends, so start children that
    must live as long as the owner from its main thread."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)
