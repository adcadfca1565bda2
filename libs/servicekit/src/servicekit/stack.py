"""The embedded stack (``make run``): broker, topics, migrations, every process of every
service with per-process log prefixes; Ctrl-C stops everything.

Services are named here by module and port only: servicekit imports no service.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from servicekit.broker import EmbeddedBroker, wait_for_port
from servicekit.topics import provision

SERVICES: dict[str, int] = {"registry": 8001, "inspection": 8002, "customs": 8003, "scoring": 8004}
PROCESSES = ("api", "relay", "worker")
_COLOURS = ("36", "33", "35", "32")


def persistent_secrets(var: Path) -> dict[str, str]:
    """Generated once per checkout (var/secrets.json) so restarts keep working keys."""
    path = var / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = {"UCX_ADMIN_TOKEN": 24, "CUSTOMS_SECRET_KEY": 32}
    for name, size in wanted.items():
        stored.setdefault(name, secrets.token_urlsafe(size))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return stored


@dataclass
class Stack:
    """A running set of service processes (used by ``make run`` and the e2e tests)."""

    env: dict[str, str]
    services: dict[str, int] = field(default_factory=lambda: dict(SERVICES))
    log: IO[str] | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def migrate(self) -> None:
        for name in self.services:
            subprocess.run(
                [sys.executable, "-m", name, "migrate"],
                env=self.env,
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def start(self, names: Iterable[str] | None = None) -> None:
        for name in names or [f"{s}.{p}" for s in self.services for p in PROCESSES]:
            self.start_process(name)

    def start_process(self, name: str) -> subprocess.Popen[bytes]:
        service, process = name.split(".")
        # the ops console (served by scoring) polls every process of this stack; the apis ask
        # this stack's registry who holds an official's token
        env = {
            "SCORING_OPS_SERVICES": json.dumps(self.services),
            "UCX_REGISTRY_URL": f"http://127.0.0.1:{self.services['registry']}",
            **self.env,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", service, process],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        self.processes[name] = proc
        colour = _COLOURS[list(self.services).index(service) % len(_COLOURS)]
        threading.Thread(target=self._pump, args=(name, colour, proc), daemon=True).start()
        return proc

    def _pump(self, name: str, colour: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        prefix = f"\x1b[{colour}m{name:<18}|\x1b[0m " if self.log is sys.stdout else f"{name:<18}| "
        for line in iter(proc.stdout.readline, b""):
            if self.log is not None:
                self.log.write(prefix + line.decode("utf-8", "replace"))
                self.log.flush()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes[name]
        proc.send_signal(sig)
        proc.wait(30)

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        for port in self.services.values():
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"port {port} not healthy after {timeout_s}s")
                time.sleep(0.2)

    def stop(self, timeout_s: float = 15.0) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    root = Path.cwd()
    var = root / "var"
    env = dict(os.environ)
    generated = persistent_secrets(var)
    for name, value in generated.items():
        env.setdefault(name, value)
    broker = None
    if "KAFKA_BOOTSTRAP_SERVERS" not in env:
        broker = EmbeddedBroker(port=9092).start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    host, _, port = env["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].rpartition(":")
    wait_for_port(host, int(port))
    provision(env["KAFKA_BOOTSTRAP_SERVERS"])
    stack = Stack(env=env, log=sys.stdout)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.migrate()
        stack.start()
        stack.wait_healthy()
        print("\nucx is running:", flush=True)
        for name, p in SERVICES.items():
            print(f"  {name:<11} http://127.0.0.1:{p}   (docs: http://127.0.0.1:{p}/docs)")
        print(f"  ops console http://127.0.0.1:{SERVICES['scoring']}/ops")
        print(f"  broker      {env['KAFKA_BOOTSTRAP_SERVERS']}")
        print(f"  admin token {env['UCX_ADMIN_TOKEN']}")
        print("Ctrl-C stops everything.\n", flush=True)
        while not stopping.is_set():
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(f"!! {name} exited with {proc.returncode}; restarting", flush=True)
                    stack.start_process(name)
            stopping.wait(1.0)
    finally:
        print("stopping ucx ...", flush=True)
        stack.stop()
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
