"""`make run`'s launcher on the fixed embedded ports: healthy within 60 s, Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PORTS = (8001, 8002, 8003, 8004)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_launcher_serves_every_api_within_60_s_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    busy = [p for p in (*PORTS, 9092) if _listening(p)]
    assert not busy, f"ports {busy} are taken: stop the other ucx (make run) first"
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.pop("UCX_ADMIN_TOKEN", None)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "servicekit.stack"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        started = time.monotonic()
        healthy: set[int] = set()
        while healthy != set(PORTS) and time.monotonic() - started < 60:
            for port in set(PORTS) - healthy:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        healthy.add(port)
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        assert healthy == set(PORTS), f"healthy after 60 s: {sorted(healthy)}"
        assert (tmp_path / "var" / "secrets.json").exists()  # the generated admin token
        launcher.send_signal(signal.SIGINT)
        output = launcher.communicate(timeout=30)[0].decode()
        assert launcher.returncode == 0
        assert "admin token" in output and "http://127.0.0.1:8004" in output
        assert not [p for p in (*PORTS, 9092) if _listening(p)]
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
