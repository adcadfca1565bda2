"""``python -m bench.standing_window``: how long a suspension is still in flight on Kafka.

The gate customs cannot close by itself: from the registry committing a suspend decision to
customs' own standing copy saying ``suspended``, a lodging, release or departure is judged on
the old status. This starts the processes on that path on an embedded broker (registry api and
relay, customs worker; SQLite), admits STANDING_N enterprises (100) one by one, waits until
customs knows each admission, suspends it through the registry API and times the window:

- stamped: the decision's ``changed_at`` (the registry's clock inside its transaction, just
  before the commit) to customs' inbox ``processed_at`` for that event (its clock inside the
  transaction that changed the standing copy, just before that commit);
- observed: the registry's HTTP answer (after its commit) to the first read of customs'
  database that says ``suspended`` (polled every 2 ms).

Prints p50/p99/max of both; not part of ``python -m bench``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

from bench import data
from bench.procs import BenchError, say
from servicekit.broker import EmbeddedBroker
from servicekit.db import make_engine
from servicekit.ports import free_port
from servicekit.stack import Stack
from servicekit.topics import provision

ADMIN_TOKEN = "bench-admin-token-not-a-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PROCESSES = ("registry.api", "registry.relay", "customs.worker")
POLL_S = 0.002


@dataclass(frozen=True)
class Window:
    stamped_ms: float
    observed_ms: float


def _stamp(value: object) -> datetime:
    """A SQLite timestamp as stored by servicekit's UtcDateTime (aware UTC)."""
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _standing(customs: Engine, uscc: str) -> str | None:
    with customs.connect() as conn:
        query = text("SELECT status FROM enterprise_standing WHERE uscc = :u")
        status: str | None = conn.execute(query, {"u": uscc}).scalar_one_or_none()
        return status


def _wait_standing(customs: Engine, uscc: str, status: str, timeout_s: float = 60) -> float:
    deadline = time.monotonic() + timeout_s
    while _standing(customs, uscc) != status:
        if time.monotonic() > deadline:
            raise BenchError(f"customs' copy of {uscc} never said {status}")
        time.sleep(POLL_S)
    return time.time()


def _stamped_ms(registry: Engine, customs: Engine, uscc: str) -> float:
    with registry.connect() as conn:
        event_id = conn.execute(
            text(
                "SELECT event_id FROM outbox WHERE topic = 'enterprise.status-changed.v1' "
                "AND key = :u ORDER BY id DESC LIMIT 1"
            ),
            {"u": uscc},
        ).scalar_one()
    with customs.connect() as conn:
        changed_at = conn.execute(
            text("SELECT changed_at FROM enterprise_standing WHERE uscc = :u"), {"u": uscc}
        ).scalar_one()
        processed_at = conn.execute(
            text("SELECT processed_at FROM inbox WHERE event_id = :e"),
            {"e": f"customs-projections:{event_id}"},
        ).scalar_one()
    return (_stamp(processed_at) - _stamp(changed_at)).total_seconds() * 1000


def measure(registry_url: str, registry: Engine, customs: Engine, n: int) -> list[Window]:
    ids, windows = data.Ids(), []
    with httpx.Client(base_url=registry_url, timeout=60) as http:
        for i in range(n):
            uscc = ids.uscc()
            http.post("/v1/enterprises", json=data.enterprise(uscc)).raise_for_status()
            decide = f"/v1/enterprises/{uscc}/decisions"
            approve = {"action": "approve", "reason": "documents and site verified"}
            http.post(decide, json=approve, headers=ADMIN).raise_for_status()
            _wait_standing(customs, uscc, "admitted")
            suspend = {"action": "suspend", "reason": "score 52: suspension tier"}
            http.post(decide, json=suspend, headers=ADMIN).raise_for_status()
            committed = time.time()  # the answer comes after the registry's commit
            seen = _wait_standing(customs, uscc, "suspended")
            windows.append(Window(_stamped_ms(registry, customs, uscc), (seen - committed) * 1000))
            if (i + 1) % 25 == 0:
                say(f"standing window: {i + 1}/{n} suspensions")
    return windows


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def table(windows: list[Window]) -> str:
    rows = ["| window (ms) | p50 | p99 | max |", "|---|---|---|---|"]
    for name, values in (
        ("registry decision -> customs' copy (DB stamps)", [w.stamped_ms for w in windows]),
        ("registry's answer -> customs' copy read (2 ms polls)", [w.observed_ms for w in windows]),
    ):
        p50, p99 = statistics.median(values), _percentile(values, 99)
        rows.append(f"| {name} | {p50:.1f} | {p99:.1f} | {max(values):.1f} |")
    return "\n".join(rows)


def main() -> int:
    n = int(os.environ.get("STANDING_N", "100"))
    with tempfile.TemporaryDirectory(prefix="ucx-standing-") as tmp:
        workdir = Path(tmp)
        broker = EmbeddedBroker().start()
        stack: Stack | None = None
        try:
            provision(broker.bootstrap_servers)
            base = free_port(0, 1, 100, 101, 200, 201)
            ports = {"registry": base, "customs": base + 1}
            env = {
                "PATH": "/usr/bin:/bin",
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "UCX_ADMIN_TOKEN": ADMIN_TOKEN,
                "PYTHONUNBUFFERED": "1",
            }
            for name, port in ports.items():
                env[f"{name.upper()}_PORT"] = str(port)
                env[f"{name.upper()}_DATABASE_URL"] = f"sqlite:///{workdir / name}.db"
            stack = Stack(env=env, services=ports, log=(workdir / "stack.log").open("w"))
            stack.migrate()
            stack.start(PROCESSES)
            _ready(f"http://127.0.0.1:{base}/healthz", "registry api")
            _ready(f"http://127.0.0.1:{base + 1 + 100}/readyz", "customs worker")
            registry = make_engine(f"sqlite:///{workdir / 'registry'}.db", read_only=True)
            customs = make_engine(f"sqlite:///{workdir / 'customs'}.db", read_only=True)
            say(f"standing window: {n} suspensions, one at a time")
            windows = measure(f"http://127.0.0.1:{base}", registry, customs, n)
            registry.dispose()
            customs.dispose()
        finally:
            if stack is not None:
                stack.stop()
                assert stack.log is not None
                stack.log.close()
            broker.stop()
    print(f"{n} suspensions, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {_load()}\n")
    print(table(windows))
    return 0


def _ready(url: str, what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise BenchError(f"{what} not ready within {timeout_s:.0f} s")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
