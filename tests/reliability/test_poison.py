"""Poison on every topic. On the running stack, a record that is not a CloudEvent and an event
whose data breaks its schema, produced to each of the ten topics, reach ``<topic>.dlq`` once per
consumer of that topic (``dlq-consumer`` names it, ``dlq-error`` says why, the value is the
original bytes) and every worker goes on. With each consumer's real handlers: a dead letter
redriven after the fix (the original bytes on the original topic, as the ops console does) is
applied exactly once by the consumer that failed."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from scoring_events import random_event
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from contracts import envelope, events, topics
from contracts.envelope import CloudEvent, new_event
from customs.__main__ import SPEC as CUSTOMS
from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from scoring.__main__ import SPEC as SCORING
from servicekit import migrate
from servicekit.cli import ServiceSpec
from servicekit.consumer import BatchApplier, Outcomes, Record, Subscription
from servicekit.db import make_engine
from servicekit.tables import inbox, outbox

import factories
from helpers import bearer
from stack_support import RunningStack, admitted_enterprise, wait_for

SPECS: dict[str, ServiceSpec] = {
    "registry": REGISTRY, "inspection": INSPECTION, "customs": CUSTOMS, "scoring": SCORING,
}  # fmt: skip


def consumers_of() -> dict[str, set[str]]:
    """topic -> the names of the subscriptions (across services) that read it."""
    found: dict[str, set[str]] = {t: set() for t in topics.ALL}
    for spec in SPECS.values():
        for subscription in spec.subscriptions(spec.settings()):
            for topic in subscription.topics:
                found[topic].add(subscription.name)
    return found


def one_of_each_type() -> dict[str, CloudEvent]:
    """A valid event of every type on the topics (seeded, so every run sends the same)."""
    rng, vins = random.Random(7), []
    found: dict[str, CloudEvent] = {}
    while len(found) < len(events.BY_TYPE) - 1:
        event = random_event(rng, vins)
        found.setdefault(event.type, event)
    assessed = events.EnterpriseAssessed(
        enterprise_uscc=factories.uscc(), score=61.5, tier="warning", previous_tier="good",
        components={"pass_rate": events.Component(value=0.5, weight=0.3)},
        recommended_action="warn", causes=["e-1"], policy_version="v1",
        assessed_at=datetime.now(UTC),
    )  # fmt: skip
    found[assessed.TYPE] = new_event(assessed, source="ucx/test")
    assert {e.topic for e in found.values()} == set(topics.ALL)
    return found


def read_all(bootstrap: str, names: list[str]) -> list[object]:
    """Every record now on these topics (one consumer, every partition)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(t, p) for t in names for p in range(topics.PARTITIONS)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    found: list[object] = []
    deadline = time.monotonic() + 10
    while any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=300).values():
            found.extend(batch)
    consumer.close()
    return found


def test_poison_on_every_topic_reaches_its_dlq_once_per_consumer_and_workers_go_on(
    stack: RunningStack,
) -> None:
    bootstrap = stack.broker.bootstrap_servers
    readers = consumers_of()
    assert all(readers.values()), {t: r for t, r in readers.items() if not r}
    poison: dict[str, tuple[bytes, bytes]] = {}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for event in one_of_each_type().values():
        marker = uuid.uuid4().hex
        undecodable = f'{{"not a cloudevent": "{marker}"'.encode()
        invalid = event.model_copy(
            update={"id": f"poison-{marker}", "data": {"enterprise_uscc": event.enterpriseid}}
        )
        poison[event.topic] = (undecodable, envelope.encode(invalid))
        for value in poison[event.topic]:
            producer.send(event.topic, key=event.enterpriseid.encode(), value=value)
    producer.flush()
    producer.close()

    def letters() -> dict[tuple[str, str, bytes], str]:
        """(topic, consumer, value) -> error, for our poison only."""
        out: dict[tuple[str, str, bytes], str] = {}
        ours = {v for values in poison.values() for v in values}
        for r in read_all(bootstrap, [topics.dlq(t) for t in poison]):
            h = {k: v.decode() for k, v in r.headers}
            if r.value in ours:
                key = (h["dlq-original-topic"], h["dlq-consumer"], r.value)
                assert key not in out, f"dead-lettered twice: {key[:2]}"
                out[key] = h["dlq-error"]
        return out

    expected = {
        (topic, consumer, value)
        for topic, values in poison.items()
        for consumer in readers[topic]
        for value in values
    }
    deadline = time.monotonic() + 90
    while not set(found := letters()) >= expected and time.monotonic() < deadline:
        time.sleep(1)
    missing = sorted((t, c, v[:20]) for t, c, v in expected - set(found))
    assert not missing, f"not dead-lettered: {missing}"
    assert set(found) == expected
    for (_topic, _consumer, value), error in found.items():
        assert error.startswith("undecodable") if value.startswith(b'{"not') else error

    # every worker went on: a registration after the poison is applied by every consumer
    registry = stack.client("registry")
    uscc, key = admitted_enterprise(registry)
    vehicle = factories.vehicle(uscc)
    assert registry.post("/v1/vehicles", json=vehicle, headers=bearer(key)).status_code == 201
    event_id = wait_for(lambda: first(stack, "scoring", LEDGER_ROW, uscc), 60)
    for service, name in (
        ("inspection", "inspection-projections"),
        ("customs", "customs-projections"),
        ("scoring", "scoring-ledger"),
    ):
        inbox_key = f"{name}:{event_id}"
        wait_for(lambda s=service, k=inbox_key: first(stack, s, INBOX_ROW, k) == "processed", 60)


LEDGER_ROW = "SELECT event_id FROM ledger WHERE uscc = ? AND type = 'vehicle.registered'"
INBOX_ROW = "SELECT outcome FROM inbox WHERE event_id = ?"


def first(stack: RunningStack, service: str, query: str, arg: str) -> object:
    found = stack.rows(service, query, arg)
    return found[0][0] if found else None


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[dict[str, Engine]]:
    made = {}
    for name, spec in SPECS.items():
        url = f"sqlite:///{tmp_path / name}.db"
        migrate.upgrade(spec.migrations, url)
        made[name] = make_engine(url)
    yield made
    for engine in made.values():
        engine.dispose()


def cases() -> Iterator[tuple[str, str, str]]:
    for service, spec in SPECS.items():
        for subscription in spec.subscriptions(spec.settings()):
            for type_ in sorted(subscription.handlers):
                yield service, subscription.name, type_


@pytest.mark.parametrize(("service", "name", "type_"), list(cases()))
def test_a_dead_letter_redriven_after_the_fix_is_applied_once(
    engines: dict[str, Engine], service: str, name: str, type_: str
) -> None:
    spec = SPECS[service]
    (real,) = [s for s in spec.subscriptions(spec.settings()) if s.name == name]
    event = one_of_each_type()[type_]

    def bug(_session: Session, _data: events.EventData) -> None:
        raise RuntimeError("a bug in this release")

    buggy = Subscription(name, after_batch=real.after_batch)
    for handler in real.handlers.values():
        buggy = buggy.on(handler.model, bug)
    engine = engines[service]
    record = Record(event.topic, 2, 41, event.enterpriseid.encode(), envelope.encode(event))
    failed = BatchApplier(engine, buggy, max_attempts=2).apply([record])
    assert failed == Outcomes(dead_lettered=1, dead_topics={event.topic: 1})
    with engine.connect() as conn:
        (letter,) = conn.execute(
            select(outbox.c.value, outbox.c.headers).where(
                outbox.c.topic == topics.dlq(event.topic)
            )
        ).all()
    assert letter.value == record.value
    assert f'["dlq-consumer", "{name}"]' in letter.headers

    # the fix is deployed; the ops console publishes the original bytes again
    redriven = Record(event.topic, 2, 97, record.key, letter.value)
    fixed = BatchApplier(engine, real, max_attempts=2)
    assert fixed.apply([redriven]) == Outcomes(processed=1)
    assert fixed.apply([redriven]) == Outcomes(duplicate=1)
    with engine.connect() as conn:
        outcome = conn.execute(
            select(inbox.c.outcome).where(inbox.c.event_id == f"{name}:{event.id}")
        ).scalar_one()
    assert outcome == "processed"
