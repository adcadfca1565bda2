"""Scoring throughput: the real worker against a no-op faust agent, same broker, same data."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.pool import NullPool

from bench.data import KafkaRecord
from bench.procs import BenchError, Proc, base_env, run
from scoring.models import LedgerEntry
from servicekit.ports import free_port

POLL_S = 0.25


@dataclass(frozen=True)
class StreamResult:
    events: int
    expected: int
    started_at: float
    first_at: float
    last_at: float
    peak_rss_mib: float | None

    @property
    def rate(self) -> float:
        return self.events / max(self.last_at - self.first_at, 1e-9)

    @property
    def startup_s(self) -> float:
        """Process start to first event: imports, faust start-up and the group join."""
        return self.first_at - self.started_at


def produce(bootstrap_servers: str, records: Sequence[KafkaRecord]) -> float:
    """Write every record (kafka-python, its default idempotent acks=all); returns events/s."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers, linger_ms=20, batch_size=512 * 1024
    )
    try:
        started = time.perf_counter()
        for r in records:
            producer.send(r.topic, key=r.key, value=r.value, headers=r.headers)
        producer.flush()
        return len(records) / (time.perf_counter() - started)
    finally:
        producer.close()


def _ledger_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


def _ledger_span(engine: Engine) -> tuple[float, float]:
    with engine.connect() as conn:
        first, last = conn.execute(
            select(func.min(LedgerEntry.recorded_at), func.max(LedgerEntry.recorded_at))
        ).one()
    return first.timestamp(), last.timestamp()


def scoring_worker(
    bootstrap_servers: str, workdir: Path, expected: int, timeout_s: float, procs: list[Proc]
) -> StreamResult:
    """Run ``python -m scoring worker`` until the ledger holds ``expected`` rows."""
    db = workdir / "scoring.db"
    env = base_env(
        SCORING_DATABASE_URL=f"sqlite:///{db}",
        SCORING_PORT=str(free_port(100, 200)),
        KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers,
    )
    run(["-m", "scoring", "migrate"], env, workdir, workdir / "scoring-migrate.log")
    # A plain engine: servicekit's takes BEGIN IMMEDIATE, which would queue us for the
    # worker's write lock; WAL readers never block the writer.
    engine = create_engine(f"sqlite:///{db}", poolclass=NullPool)
    worker = Proc("scoring-worker", ["-m", "scoring", "worker"], env, workdir)
    procs.append(worker)
    try:
        count = 0
        deadline = time.monotonic() + timeout_s
        while count < expected and time.monotonic() < deadline:
            time.sleep(POLL_S)
            worker.check_alive()
            count = _ledger_count(engine)
        if count == 0:
            raise BenchError(f"scoring worker recorded nothing in {timeout_s:.0f}s")
        first_at, last_at = _ledger_span(engine)
    finally:
        engine.dispose()
    return StreamResult(
        count, expected, worker.started_at, first_at, last_at, worker.peak_rss_mib()
    )


def noop_agent(
    bootstrap_servers: str, workdir: Path, expected: int, timeout_s: float, procs: list[Proc]
) -> StreamResult:
    result = workdir / "noop-result.json"
    env = base_env(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers,
        BENCH_GROUP=f"bench-noop-{uuid.uuid4().hex[:8]}",
        BENCH_WEB_PORT=str(free_port()),
        BENCH_EXPECT=str(expected),
        BENCH_RESULT=str(result),
    )
    agent = Proc("noop-agent", ["-m", "bench.noop_agent"], env, workdir)
    procs.append(agent)
    agent.wait_for_file(result, timeout_s, f"did not see {expected} events")
    summary = json.loads(result.read_text())
    return StreamResult(
        summary["events"],
        expected,
        agent.started_at,
        summary["first_at"],
        summary["last_at"],
        agent.peak_rss_mib(),
    )
