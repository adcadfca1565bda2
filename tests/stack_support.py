"""Running the stack as real processes for the e2e and reliability tests."""

from __future__ import annotations

import contextlib
import importlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import pytest
from standardwebhooks import Webhook

from servicekit import migrate
from servicekit.broker import EmbeddedBroker
from servicekit.cli import ServiceSpec
from servicekit.lifetime import children
from servicekit.ports import free_port
from servicekit.stack import SERVICES, Stack
from servicekit.topics import provision

import factories
from helpers import ADMIN, ADMIN_TOKEN


def free_base() -> int:
    """A base port such that base+i, +100 (worker) and +200 (relay) are free for each service."""
    return free_port(*[i + off for i in range(len(SERVICES)) for off in (0, 100, 200)])


class RunningStack:
    def __init__(self, tmp: Path, broker: EmbeddedBroker) -> None:
        self.broker = broker
        base = free_base()
        self.ports = {name: base + i for i, name in enumerate(SERVICES)}
        env = {
            "PATH": "/usr/bin:/bin",
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "UCX_ADMIN_TOKEN": ADMIN_TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
        for name, port in self.ports.items():
            prefix = name.upper()
            env[f"{prefix}_PORT"] = str(port)
            env[f"{prefix}_DATABASE_URL"] = f"sqlite:///{tmp / name}.db"
        self.db = {name: tmp / f"{name}.db" for name in SERVICES}
        self.log_path = tmp / "stack.log"
        self.stack = Stack(env=env, services=self.ports, log=self.log_path.open("w"))

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def client(self, service: str) -> httpx.Client:
        return httpx.Client(base_url=self.url(service), timeout=10)

    def rows(self, service: str, query: str, *params: object) -> list[tuple[Any, ...]]:
        """A query on a service's database, beside its running processes."""
        with sqlite3.connect(self.db[service], timeout=30) as conn:
            return conn.execute(query, params).fetchall()

    def standing(self, service: str, uscc: str) -> str | None:
        """The service's own copy of an enterprise's status (kept from
        ``enterprise.status-changed``): what its gates decide on, a moment after the
        registry's commit."""
        found = self.rows(service, "SELECT status FROM enterprise_standing WHERE uscc = ?", uscc)
        return found[0][0] if found else None

    def start(self) -> None:
        self.migrate()
        self.stack.start()
        self.stack.wait_healthy(60)
        self.wait_workers_ready()

    def migrate(self) -> None:
        """In this process (its imports are done), as ``python -m <service> migrate`` does:
        four interpreters starting cost ~8 s per stack."""
        for name, path in self.db.items():
            spec: ServiceSpec = importlib.import_module(f"{name}.__main__").SPEC
            migrate.upgrade(spec.migrations, f"sqlite:///{path}")

    def wait_workers_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        for port in self.ports.values():
            while True:
                try:
                    if (
                        httpx.get(f"http://127.0.0.1:{port + 100}/readyz", timeout=2).status_code
                        == 200
                    ):
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"worker on {port + 100} not ready"
                time.sleep(0.3)

    def stop(self) -> None:
        self.stack.stop()
        assert self.stack.log is not None
        self.stack.log.close()


def children_of(pid: int, running: str = "spawn_main") -> list[int]:
    """Live children of ``pid`` whose command line has ``running``; by default
    multiprocessing's spawned children (not its resource tracker)."""
    found = []
    for child in children(pid):
        with contextlib.suppress(OSError):
            if running in Path(f"/proc/{child}/cmdline").read_text():
                found.append(child)
    return found


T = TypeVar("T")


def wait_for(
    check: Callable[[], T | Literal[False] | None], timeout_s: float = 60, every_s: float = 0.2
) -> T:
    """Polls ``check`` until it returns something true, and returns that."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(every_s)


def admitted_enterprise(registry: httpx.Client) -> tuple[str, str]:
    """Apply and approve an enterprise over HTTP; returns its USCC and API key."""
    body = factories.enterprise()
    assert registry.post("/v1/enterprises", json=body).status_code == 201
    approved = registry.post(
        f"/v1/enterprises/{body['uscc']}/decisions",
        headers=ADMIN,
        json={"action": "approve", "reason": "documents and site verified"},
    )
    assert approved.status_code == 200, approved.text
    return body["uscc"], approved.json()["api_key"]


def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The body of every module-scoped ``stack`` fixture: a fresh broker, topics, the stack."""
    broker = EmbeddedBroker().start()
    provision(broker.bootstrap_servers)
    running = RunningStack(tmp_path_factory.mktemp("stack"), broker)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        broker.stop()


def signed(secret: str, type_: str, data: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    """A Standard Webhooks message as a customs broker would send it."""
    body = json.dumps({"type": type_, "timestamp": datetime.now(UTC).isoformat(), "data": data})
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    return body.encode(), {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "content-type": "application/json",
    }
