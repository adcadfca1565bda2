"""The outbox relay against the real embedded broker and real databases."""

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, MetaData, func, select
from sqlalchemy.orm import Session

from contracts import envelope, events, topics
from servicekit import outbox, tables
from servicekit.broker import EmbeddedBroker
from servicekit.db import new_metadata
from servicekit.relay import Relay, replay_from
from servicekit.settings import BaseServiceSettings
from servicekit.tables import outbox as outbox_table
from servicekit.topics import provision


def _event(uscc: str = "91350100M000100Y43") -> envelope.CloudEvent:
    return envelope.new_event(
        events.ComplaintFiled(
            enterprise_uscc=uscc,
            complaint_id=str(uuid.uuid4()),
            country="KZ",
            category="no_spare_parts",
            filed_at=datetime.now(UTC),
        ),
        source="ucx/test",
    )


@pytest.fixture
def engine(engine_with: Callable[[MetaData], Engine]) -> Engine:
    """servicekit's own tables on a fresh database: no service needed to test the relay."""
    metadata = new_metadata()
    tables.define(metadata)
    return engine_with(metadata)


def _write(engine: Engine, n: int) -> list[str]:
    ids = []
    with Session(engine) as session, session.begin():
        for _ in range(n):
            event = _event()
            outbox.add(session, event)
            ids.append(event.id)
    return ids


def _read_all(bootstrap: str, topic: str, expect: int, timeout_s: float = 20) -> list[str]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(topics.PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ids: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(ids) < expect and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            ids.extend(envelope.decode(r.value).id for r in records)
    consumer.close()
    return ids


def _unsent(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(outbox_table)
                .where(outbox_table.c.sent_at.is_(None))
            ).scalar_one()
        )


def _running(relay: Relay) -> threading.Thread:
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    return thread


def _wait(condition: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_relay_publishes_in_order_and_marks_sent(engine: Engine) -> None:
    with EmbeddedBroker() as broker:
        provision(broker.bootstrap_servers)
        ids = _write(engine, 50)
        relay = Relay(BaseServiceSettings(kafka_bootstrap_servers=broker.bootstrap_servers), engine)
        thread = _running(relay)
        _wait(lambda: _unsent(engine) == 0)
        relay.stop()
        thread.join(10)
        # one key -> one partition: the order on the partition is the outbox order
        assert _read_all(broker.bootstrap_servers, topics.COMPLAINT_FILED, 50) == ids


def test_relay_keeps_going_while_the_broker_is_down_and_catches_up(engine: Engine) -> None:
    broker = EmbeddedBroker().start()
    settings = BaseServiceSettings(
        kafka_bootstrap_servers=broker.bootstrap_servers, relay_backoff_max_s=0.5
    )
    relay = Relay(settings, engine)
    thread = _running(relay)
    try:
        first = _write(engine, 10)
        _wait(lambda: _unsent(engine) == 0)
        broker.stop()
        during = _write(engine, 10)  # the API keeps accepting: the outbox absorbs the outage
        time.sleep(2)
        assert _unsent(engine) == 10
        broker.start()  # a fresh, empty broker on the same port
        started = time.monotonic()
        _wait(lambda: _unsent(engine) == 0, timeout_s=60)
        print(f"caught up {time.monotonic() - started:.1f}s after the broker returned")
        assert _read_all(broker.bootstrap_servers, topics.COMPLAINT_FILED, 10) == during
        replay_from(engine, None)  # fill the fresh broker with what it lost
        _wait(lambda: _unsent(engine) == 0)
        replayed = _read_all(broker.bootstrap_servers, topics.COMPLAINT_FILED, 30)
        assert sorted(set(replayed)) == sorted(first + during)
        assert thread.is_alive()
    finally:
        relay.stop()
        thread.join(10)
        broker.stop()
