"""Children that never outlive their owner (PR_SET_PDEATHSIG), also when the owner is gone
before the child asks."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from stack_support import wait_for

GRANDCHILD = (
    "import os, signal, time\n"
    "from servicekit.lifetime import die_with_parent\n"
    "die_with_parent(signal.SIGKILL, os.getppid())\n"
    "time.sleep(60)\n"
)
OWNER = (
    "import subprocess, sys, time\n"
    f"p = subprocess.Popen([sys.executable, '-c', {GRANDCHILD!r}])\n"
    "print(p.pid, flush=True)\n"
    "time.sleep(1)\n"
)


def test_a_child_dies_with_its_owner() -> None:
    owner = subprocess.run([sys.executable, "-c", OWNER], capture_output=True, timeout=30)
    pid = int(owner.stdout)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, every_s=0.1)


def test_a_child_whose_owner_is_already_gone_ends_itself() -> None:
    late = (
        "import signal\n"
        "from servicekit.lifetime import die_with_parent\n"
        "die_with_parent(signal.SIGKILL, owner=1)\n"  # not our parent: it is gone already
        "print('survived')\n"
    )
    child = subprocess.run([sys.executable, "-c", late], capture_output=True, timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert b"survived" not in child.stdout
