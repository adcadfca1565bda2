"""Subprocesses we start, watch and always stop, by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from servicekit.lifetime import children

BENCH_ROOT = Path(__file__).resolve().parents[1]
"""The directory holding the ``bench`` package, put on PYTHONPATH for ``python -m bench.*``."""


class BenchError(RuntimeError):
    pass


def _vm_hwm_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM (the resident set's high-water mark) of the process plus its child processes
    (the scoring worker's batch applier), read while they still run."""
    own = _vm_hwm_mib(pid)
    if own is None:
        return None
    return own + sum(_vm_hwm_mib(child) or 0.0 for child in children(pid))


def say(message: str) -> None:
    """Progress and diagnostics go to stderr: stdout carries the table only."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def base_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REGISTRY_", "SCORING_", "INSPECTION_", "CUSTOMS_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(BENCH_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def run(args: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path) -> None:
    """Run a short command to completion (e.g. a migration); raise with its log on failure."""
    with log.open("ab") as out:
        code = subprocess.call(
            [sys.executable, *args], env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    if code != 0:
        raise BenchError(f"{' '.join(args)} exited {code}:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


class Proc:
    """A long-running ``python <args>`` child with its output in a log file."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        self.name = name
        self.log = cwd / f"{name}.log"
        self.started_at = time.time()
        self._out = self.log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            env=dict(env),
            cwd=cwd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches the bench only; it stops children itself
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise BenchError(f"{self.name} exited early with {code}:\n{tail(self.log)}")

    def wait_for_port(self, port: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.name}: nothing on port {port}") from None
                time.sleep(0.05)

    def wait_for_file(self, path: Path, timeout_s: float, what: str, poll_s: float = 0.25) -> None:
        """Until this process has written ``path`` (it may exit once it has); ``what`` it
        did not do, in the error."""
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} {what} in {timeout_s:.0f} s")
            time.sleep(poll_s)
            if not path.exists():
                self.check_alive()

    def peak_rss_mib(self) -> float | None:
        return peak_rss_mib(self.pid)

    def cpu_s(self) -> float | None:
        """User + system CPU seconds the process (all its threads) has used so far."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._out.close()
