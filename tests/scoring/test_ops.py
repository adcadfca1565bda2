"""The ops console over HTTP, on the embedded broker: dead letters made by the consumer's own
batch step and published by the relay; the page escapes whatever it shows; a redrive is an
outbox row the relay publishes, once per letter, never a direct produce."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from scoring_events import event, inspected

from contracts import envelope, events, topics
from scoring import ops
from scoring.__main__ import SPEC
from scoring.settings import Settings
from servicekit.broker import EmbeddedBroker
from servicekit.clock import clock
from servicekit.consumer import BatchApplier, Record
from servicekit.db import make_engine
from servicekit.relay import Relay

import factories
from helpers import ADMIN_TOKEN, consume, row_lands_first, service_client, sql
from stack_support import wait_for

LISTED = re.compile(
    r'name="topic" value="([^"]*)">\s*<input type="hidden" name="partition" value="(\d+)">'
    r'\s*<input type="hidden" name="offset" value="(\d+)">'
)


@pytest.fixture
def console(database_url: str, broker: EmbeddedBroker) -> Iterator[TestClient]:
    """Scoring's api on the broker; the processes it probes are not running (closed ports)."""
    for client, _ in service_client(
        SPEC, database_url, kafka_bootstrap_servers=broker.bootstrap_servers, ops_services={}
    ):
        yield client


def settings_of(client: TestClient) -> Settings:
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    return settings


def relay(client: TestClient) -> None:
    """Run scoring's relay until the outbox is empty."""
    engine = make_engine(settings_of(client).database_url)
    publisher = Relay(settings_of(client), engine)
    running = threading.Thread(target=publisher.run, daemon=True)
    running.start()
    try:
        wait_for(lambda: unsent(client) == 0, timeout_s=30)
    finally:
        publisher.stop()
        running.join(10)
        engine.dispose()


def unsent(client: TestClient) -> int:
    return int(sql(client, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0])


def dead_letter(client: TestClient, value: bytes) -> ops.DeadLetter:
    """``value`` on vehicle.inspected, dead-lettered by scoring's own consumer step and
    published to the .dlq topic by its relay: the letter as the console reads it."""
    settings = settings_of(client)
    engine = make_engine(settings.database_url)
    try:
        [subscription] = SPEC.subscriptions(settings)
        record = Record(topics.VEHICLE_INSPECTED, 0, 7, factories.uscc().encode(), value)
        assert BatchApplier(engine, subscription, 1).apply([record]).dead_lettered == 1
    finally:
        engine.dispose()
    relay(client)
    [letter] = [x for x in ops.dead_letters(settings) if x.value == value]
    return letter


def undecodable() -> bytes:
    return f'{{"broken": "{uuid.uuid4()}"'.encode()


def redrive(client: TestClient, letter: ops.DeadLetter, token: str = ADMIN_TOKEN) -> Any:
    form = {"topic": letter.topic, "partition": letter.partition, "offset": letter.offset}
    return client.post("/ops/dlq/redrive", data={**form, "token": token}, follow_redirects=False)


def redriven_rows(client: TestClient, letter: ops.DeadLetter) -> list[Any]:
    """The outbox rows that would publish ``letter`` again."""
    return sql(
        client,
        "SELECT topic, value, headers, sent_at FROM outbox WHERE event_id LIKE 'redrive-%'"
        " AND value = :v",
        v=letter.value,
    )


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in range(topics.PARTITIONS)]
        return dict(consumer.end_offsets(parts))
    finally:
        consumer.close()


def records_after(bootstrap: str, offsets: dict[TopicPartition, int]) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=2000)
    try:
        consumer.assign(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        return list(consumer)
    finally:
        consumer.close()


def listed(client: TestClient) -> set[tuple[str, int, int]]:
    """The letters the console offers to redrive (on the session's broker: any test's)."""
    page = client.get("/ops").text
    return {(topic, int(p), int(o)) for topic, p, o in LISTED.findall(page)}


def place(letter: ops.DeadLetter) -> tuple[str, int, int]:
    return letter.topic, letter.partition, letter.offset


def test_a_redrive_is_an_outbox_row_the_relay_publishes(console: TestClient) -> None:
    letter = dead_letter(console, undecodable())
    assert place(letter) in listed(console)
    bootstrap = settings_of(console).kafka_bootstrap_servers
    before = end_offsets(bootstrap, topics.VEHICLE_INSPECTED)

    refused = redrive(console, letter, token="not-the-admin-token")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert redriven_rows(console, letter) == []

    answer = redrive(console, letter)
    assert (answer.status_code, answer.headers["location"]) == (303, "/ops")
    [(topic, value, headers, sent_at)] = redriven_rows(console, letter)
    assert (topic, bytes(value), sent_at) == (topics.VEHICLE_INSPECTED, letter.value, None)
    assert "dlq-" not in headers
    assert sql(console, 'SELECT topic, "partition", "offset" FROM dlq_redrives') == [
        (letter.topic, letter.partition, letter.offset)
    ]
    assert records_after(bootstrap, before) == []  # nothing produced by the request itself

    relay(console)
    published = records_after(bootstrap, before)
    assert [(r.topic, r.value) for r in published] == [(topics.VEHICLE_INSPECTED, letter.value)]
    assert not [k for k, _ in published[0].headers if k.startswith("dlq-")]
    assert letter in ops.dead_letters(settings_of(console))  # Kafka keeps the letter,
    assert place(letter) not in listed(console)  # the console offers it no more


REDRIVEN = (
    'INSERT INTO dlq_redrives (topic, "partition", "offset", redriven_at) VALUES (:t, :p, :o, :at)'
)
"""Another request's redrive of a letter (its row, landing first)."""


def test_a_letter_redriven_twice_also_concurrently_is_published_once(
    console: TestClient,
) -> None:
    letter = dead_letter(console, undecodable())
    assert redrive(console, letter).status_code == 303
    again = redrive(console, letter)  # a second click, or a reload that posts again
    assert (again.status_code, again.headers["location"]) == (303, "/ops")
    assert len(redriven_rows(console, letter)) == 1

    racing = dead_letter(console, undecodable())
    where = {"t": racing.topic, "p": racing.partition, "o": racing.offset, "at": clock.now()}
    with row_lands_first(console, "dlq_redrives", REDRIVEN, **where):
        lost = redrive(console, racing)
    assert (lost.status_code, lost.headers["location"]) == (303, "/ops")  # as already redriven
    assert redriven_rows(console, racing) == []  # the loser publishes nothing


def test_whatever_the_console_shows_is_escaped(console: TestClient) -> None:
    hostile = f"<script>alert('{uuid.uuid4().hex[:8]}')</script>"  # this test's own
    uscc = factories.uscc()
    hostile_type = inspected(uscc).model_copy(update={"type": hostile})
    letter = dead_letter(console, envelope.encode(hostile_type))
    assert hostile in letter.error  # "no handler for type '<script>...'"
    changed = events.EnterpriseStatusChanged.model_validate(
        {"enterprise_uscc": uscc, "from": "admitted", "to": "warned", "actor": "admin",
         "reason": hostile, "changed_at": clock.now()}
    )  # fmt: skip
    consume(SPEC, settings_of(console), event(changed))

    page = console.get("/ops", params={"q": "<script>x</script>"})
    assert page.status_code == 200
    assert "<script" not in page.text.lower()
    escaped = hostile.replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")
    assert page.text.count(escaped) == 2  # the letter's error and the change's reason
    assert 'value="&lt;script&gt;x&lt;/script&gt;"' in page.text  # the search box
    assert "No assessment for enterprise &lt;SCRIPT&gt;X&lt;/SCRIPT&gt;." in page.text
