"""The scoring worker as real processes on the embedded broker: poison records go to the
dead-letter topic and the worker goes on; two workers share the partitions, one is SIGKILLed
mid-stream, and the ledger still holds every event exactly once with states equal to a replay."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from kafka import KafkaProducer
from scoring_events import random_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts import envelope, topics
from contracts.envelope import CloudEvent
from scoring import domain, ops, policy, services
from scoring.__main__ import SPEC
from scoring.models import EnterpriseAssessment, LedgerEntry
from scoring.settings import Settings
from servicekit import migrate
from servicekit.broker import EmbeddedBroker
from servicekit.db import make_engine
from servicekit.tables import inbox

import factories
from stack_support import children_of, free_base, wait_for

POLICY = policy.load(Settings().policy_path)


class Workers:
    def __init__(self, broker: EmbeddedBroker, tmp: Path) -> None:
        self.url = f"sqlite:///{tmp / 'scoring.db'}"
        migrate.upgrade(SPEC.migrations, self.url)
        self.engine = make_engine(self.url)
        self.base = free_base()
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "SCORING_DATABASE_URL": self.url,
            "SCORING_PORT": str(self.base),
            "PYTHONUNBUFFERED": "1",
            # small transactions, so that a SIGKILL lands mid-stream and between commits
            "SCORING_CONSUMER_BATCH_SIZE": "100",
            "SCORING_CONSUMER_MERGE_MAX": "100",
        }
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, process: str, worker_port: int = 0) -> None:
        env = {**self.env, "SCORING_WORKER_PORT": str(worker_port)} if worker_port else self.env
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "scoring", process], env=env, stdout=log, stderr=log
        )

    def wait_ready(self, port: int, timeout_s: float = 90) -> None:
        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout_s)

    def ledger_count(self) -> int:
        with Session(self.engine) as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(LedgerEntry)
                    .where(LedgerEntry.type != domain.TICK)
                )
                or 0
            )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.engine.dispose()


@pytest.fixture
def workers(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(broker, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def produce(bootstrap: str, batch: list[CloudEvent]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for event in batch:
        producer.send(
            event.topic,
            key=event.enterpriseid.encode(),
            value=envelope.encode(event),
            headers=envelope.headers(event),
        )
    producer.flush()
    producer.close()


def dead_letters(bootstrap: str, values: set[bytes], timeout_s: float = 60) -> list[ops.DeadLetter]:
    """The dead letters of these records, read as the ops console reads the ``.dlq`` topics
    (the session's broker also holds other tests' letters)."""
    settings = Settings(kafka_bootstrap_servers=bootstrap)

    def found() -> list[ops.DeadLetter]:
        letters = [x for x in ops.dead_letters(settings) if x.value in values]
        return letters if len(letters) >= len(values) else []

    return wait_for(found, timeout_s, every_s=0.5)


def test_poison_records_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    workers.start("worker", "worker")
    workers.start("relay", "relay")
    workers.wait_ready(workers.base + 100)
    uscc = factories.uscc()
    good = random_event(random.Random(1), [])
    schema_invalid = good.model_copy(update={"id": "poison-1", "data": {"enterprise_uscc": uscc}})
    unknown_type = good.model_copy(update={"id": "poison-2", "type": "vehicle.teleported"})
    topic = good.topic
    poison = [
        f"not json {uuid.uuid4()}".encode(),
        *map(envelope.encode, (schema_invalid, unknown_type)),
    ]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
    for value in poison:
        producer.send(topic, key=uscc.encode(), value=value)
    producer.flush()
    producer.close()
    produce(broker.bootstrap_servers, [good])

    letters = dead_letters(broker.bootstrap_servers, set(poison))
    errors = sorted(x.error[:40] for x in letters)
    assert len(letters) == 3 and {x.topic for x in letters} == {topics.dlq(topic)}, errors
    assert any("undecodable" in e for e in errors)
    assert any("no handler" in e for e in errors)
    assert any("ValidationError" in e for e in errors)
    wait_for(lambda: workers.ledger_count() == 1, 30)  # the good one, after the poison


@pytest.mark.long  # a fault run: make test-reliability
def test_two_workers_share_the_partitions_and_a_sigkill_loses_and_doubles_nothing(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    first, second = workers.base + 100, workers.base + 101
    workers.start("worker-a", "worker", first)
    workers.start("worker-b", "worker", second)
    workers.wait_ready(first)
    workers.wait_ready(second)
    rng = random.Random(42)
    vins: list[str] = []
    history = [random_event(rng, vins) for _ in range(5000)]
    produce(broker.bootstrap_servers, history)

    # the worker applies its batches in a child process, which must die with it
    appliers = cast(list[int], wait_for(lambda: children_of(workers.procs["worker-a"].pid), 30))
    wait_for(lambda: workers.ledger_count() >= 300, 60, every_s=0.01)
    workers.procs["worker-a"].send_signal(signal.SIGKILL)
    workers.procs["worker-a"].wait(10)
    at_kill = workers.ledger_count()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in appliers), 10)
    assert at_kill < len(history), "killed too late to prove anything"
    wait_for(lambda: workers.ledger_count() >= len(history), 120, every_s=0.5)
    time.sleep(2)  # anything counted twice would show up now
    workers.stop()

    with Session(workers.engine) as session:
        seen = session.scalars(
            select(LedgerEntry.event_id).where(LedgerEntry.type != domain.TICK)
        ).all()
        assert len(seen) == len(history)
        assert set(seen) == {e.id for e in history}
        processed = session.scalar(select(func.count()).select_from(inbox)) or 0
        assert processed == len(history)
        replayed = domain.replay(POLICY, services.ledger_entries(session))
        rows = session.scalars(select(EnterpriseAssessment)).all()
        assert len(rows) == len(replayed) == 3
        for row in rows:
            assert domain.State.from_json(row.state) == replayed[row.uscc]
        assert services.verify_chain(session) == (len(history), [])
