"""Free ports for local servers (the embedded broker, the stack's processes, test receivers).

Chosen below the kernel's ephemeral range: local ports of outgoing connections come from that
range, so a server port chosen there can be taken by a client between the check and the bind
(seen: a worker's web port, "address already in use")."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10_000


def free_port(*offsets: int) -> int:
    """A free port P such that P + each offset is free too (a stack: api P, worker P + 100,
    relay P + 200)."""
    top = _below_ephemeral() - max(offsets, default=0) - 1
    for _ in range(200):
        port = random.randrange(LOWEST, top)
        if all(_free(port + offset) for offset in (0, *offsets)):
            return port
    raise RuntimeError(f"no free port between {LOWEST} and {top}")


def _free(port: int) -> bool:
    """Nothing listens on it and nothing holds it: bound as the servers bind (all addresses)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _below_ephemeral() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    return max(low, LOWEST + 2_000)
