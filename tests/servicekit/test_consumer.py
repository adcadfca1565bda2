"""The consumer base's batch transaction on real databases: dedupe, retry, dead letters."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from contracts import envelope, events, topics
from customs.__main__ import SPEC
from servicekit import migrate, standing
from servicekit.consumer import BatchApplier, Outcomes, Record, Subscription
from servicekit.db import make_engine
from servicekit.tables import inbox, outbox

import factories


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    migrate.upgrade(SPEC.migrations, database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def status_event(uscc: str, to: str = "admitted") -> envelope.CloudEvent:
    return envelope.new_event(
        events.EnterpriseStatusChanged.model_validate(
            {
                "enterprise_uscc": uscc,
                "from": "applied",
                "to": to,
                "actor": "admin",
                "reason": "approved",
                "changed_at": datetime.now(UTC),
            }
        ),
        source="ucx/registry",
    )


def record(event: envelope.CloudEvent | bytes, offset: int = 0) -> Record:
    value = event if isinstance(event, bytes) else envelope.encode(event)
    return Record(topics.STATUS_CHANGED, 3, offset, b"91350100M000100Y43", value)


def applier(engine: Engine, handler: object = standing.apply) -> BatchApplier:
    subscription = Subscription("test", {events.EnterpriseStatusChanged.TYPE: handler})  # type: ignore[dict-item]
    return BatchApplier(engine, subscription, max_attempts=3)


def dead_letters(engine: Engine) -> list[tuple[str, dict[str, str]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.topic, outbox.c.headers).where(outbox.c.topic.like("%.dlq"))
        ).all()
    return [(r.topic, dict(json.loads(r.headers))) for r in rows]


def test_a_redelivered_event_changes_nothing(engine: Engine) -> None:
    uscc = factories.uscc()
    event = status_event(uscc)
    outcome = applier(engine).apply([record(event, 0), record(event, 1)])
    assert outcome == Outcomes(processed=1, duplicate=1)
    again = applier(engine).apply([record(event, 0)])
    assert again == Outcomes(duplicate=1)
    with Session(engine) as session:
        assert standing.status_of(session, uscc) == "admitted"


def test_a_handler_that_keeps_failing_is_dead_lettered_and_the_batch_goes_on(
    engine: Engine,
) -> None:
    calls: list[str] = []
    poison_uscc, good_uscc = factories.uscc(), factories.uscc()

    def flaky(session: Session, event: envelope.CloudEvent) -> None:
        calls.append(event.id)
        if event.enterpriseid == poison_uscc:
            raise RuntimeError("cannot apply this one")
        standing.apply(session, event)

    poison, good = status_event(poison_uscc), status_event(good_uscc)
    outcome = applier(engine, flaky).apply([record(poison, 7), record(good, 8)])
    assert outcome == Outcomes(
        processed=1, dead_lettered=1, dead_topics={"enterprise.status-changed.v1": 1}
    )
    assert calls.count(poison.id) == 1 + 3  # the fast path, then isolated and retried 3 times
    [(topic, headers)] = dead_letters(engine)
    assert topic == "enterprise.status-changed.v1.dlq"
    assert headers["dlq-error"] == "RuntimeError: cannot apply this one"
    assert headers["dlq-original-offset"] == "7"
    with Session(engine) as session:
        assert standing.status_of(session, good_uscc) == "admitted"
        assert standing.status_of(session, poison_uscc) is None  # the savepoint rolled back

    # redrive after the fix: processed exactly once
    assert applier(engine).apply([record(poison, 7)]).processed == 1
    assert applier(engine).apply([record(poison, 7)]).duplicate == 1
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(inbox.c.outcome).where(inbox.c.event_id == f"test:{poison.id}")
            ).scalar_one()
            == "processed"
        )


def test_an_undecodable_record_is_dead_lettered(engine: Engine) -> None:
    outcome = applier(engine).apply([record(b"{not a cloudevent")])
    assert outcome.dead_lettered == 1
    [(_topic, headers)] = dead_letters(engine)
    assert headers["dlq-error"].startswith("undecodable")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inbox")).scalar_one() == 0
