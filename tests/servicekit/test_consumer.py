"""The consumer base's batch transaction on real databases (servicekit's own tables, no
service): typed handlers, dedupe, retry, dead letters."""

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, MetaData, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from contracts import envelope, events, topics
from servicekit import standing, tables
from servicekit.consumer import BatchApplier, Outcomes, Record, Subscription
from servicekit.db import new_metadata
from servicekit.tables import inbox, outbox

import factories


class Base(DeclarativeBase):
    metadata = new_metadata()


class Seen(Base):
    """A handler's ORM row: its INSERT waits for the session's next flush."""

    __tablename__ = "seen"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)


metadata = Base.metadata
tables.define(metadata)
standing.define(metadata)


@pytest.fixture
def engine(engine_with: Callable[[MetaData], Engine]) -> Engine:
    """servicekit's inbox, outbox and standing tables on a fresh database."""
    return engine_with(metadata)


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


StatusHandler = Callable[[Session, events.EnterpriseStatusChanged], None]


def applier(engine: Engine, handler: StatusHandler = standing.apply) -> BatchApplier:
    subscription = Subscription("test").on(events.EnterpriseStatusChanged, handler)
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

    def flaky(session: Session, data: events.EnterpriseStatusChanged) -> None:
        calls.append(data.enterprise_uscc)
        if data.enterprise_uscc == poison_uscc:
            raise RuntimeError("cannot apply this one")
        standing.apply(session, data)

    poison, good = status_event(poison_uscc), status_event(good_uscc)
    outcome = applier(engine, flaky).apply([record(poison, 7), record(good, 8)])
    assert outcome == Outcomes(
        processed=1, dead_lettered=1, dead_topics={"enterprise.status-changed.v1": 1}
    )
    assert calls.count(poison_uscc) == 1 + 3  # the fast path, then isolated and retried 3 times
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


def test_a_handler_receives_its_model_and_the_envelope_when_it_asks(engine: Engine) -> None:
    seen: list[tuple[object, str]] = []

    def handler(
        session: Session, data: events.EnterpriseStatusChanged, event: envelope.CloudEvent
    ) -> None:
        seen.append((data, event.id))

    event = status_event(factories.uscc(), to="suspended")
    subscription = Subscription("test").on_envelope(events.EnterpriseStatusChanged, handler)
    assert BatchApplier(engine, subscription, 1).apply([record(event)]) == Outcomes(processed=1)
    [(data, event_id)] = seen
    assert isinstance(data, events.EnterpriseStatusChanged)
    assert (data.enterprise_uscc, data.to_status, event_id) == (
        event.enterpriseid,
        "suspended",
        event.id,
    )


def test_data_that_is_not_what_its_type_promises_is_dead_lettered_unseen_by_the_handler(
    engine: Engine,
) -> None:
    calls: list[str] = []

    def counting(session: Session, data: events.EnterpriseStatusChanged) -> None:
        calls.append(data.enterprise_uscc)
        standing.apply(session, data)

    good_uscc = factories.uscc()
    good = status_event(good_uscc)
    invalid = status_event(factories.uscc()).model_copy(
        update={"data": {"enterprise_uscc": good_uscc, "to": "admitted"}}
    )
    outcome = applier(engine, counting).apply([record(invalid, 4), record(good, 5)])
    assert outcome == Outcomes(
        processed=1, dead_lettered=1, dead_topics={"enterprise.status-changed.v1": 1}
    )
    assert calls == [good_uscc]  # once: the invalid event did not send the batch to the redo
    [(topic, headers)] = dead_letters(engine)
    assert topic == "enterprise.status-changed.v1.dlq"
    assert headers["dlq-error"].startswith("ValidationError: ")
    assert headers["dlq-original-offset"] == "4"
    with engine.connect() as conn:
        outcome_of = conn.execute(
            select(inbox.c.outcome).where(inbox.c.event_id == f"test:{invalid.id}")
        ).scalar_one()
    assert outcome_of == "dead_lettered"


def test_each_event_is_parsed_once_even_when_the_batch_is_redone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    typed_data = envelope.CloudEvent.typed_data

    def counted(self: envelope.CloudEvent) -> events.EventData:
        parsed.append(self.id)
        return typed_data(self)

    monkeypatch.setattr(envelope.CloudEvent, "typed_data", counted)
    poison_uscc = factories.uscc()

    def failing_once_per_attempt(session: Session, data: events.EnterpriseStatusChanged) -> None:
        if data.enterprise_uscc == poison_uscc:
            raise RuntimeError("cannot apply this one")

    batch = [status_event(poison_uscc), status_event(factories.uscc())]
    outcome = applier(engine, failing_once_per_attempt).apply(
        [record(e, i) for i, e in enumerate(batch)]
    )
    assert (outcome.processed, outcome.dead_lettered) == (1, 1)
    assert parsed == [e.id for e in batch]


def test_an_event_of_a_type_no_handler_takes_is_dead_lettered_without_a_redo(
    engine: Engine,
) -> None:
    """A missing handler is known before the transaction: that record's own dead letter, in
    either pass, never a reason to redo the batch (the other events are applied once)."""
    calls: list[str] = []

    def counting(session: Session, data: events.EnterpriseStatusChanged) -> None:
        calls.append(data.enterprise_uscc)
        standing.apply(session, data)

    filed = envelope.new_event(
        events.ComplaintFiled(
            enterprise_uscc=factories.uscc(),
            complaint_id="0b6f1c9e-5d0e-4a53-9a1f-3f3c2f1f7a10",
            country="KZ",
            category="no_spare_parts",
            filed_at=datetime.now(UTC),
        ),
        source="ucx/registry",
    )
    good_uscc = factories.uscc()
    outcome = applier(engine, counting).apply(
        [record(filed, 0), record(status_event(good_uscc), 1)]
    )
    assert (outcome.processed, outcome.dead_lettered) == (1, 1)
    assert calls == [good_uscc]
    [(_topic, headers)] = dead_letters(engine)
    assert headers["dlq-error"] == "no handler for type 'enterprise.complaint-filed'"


def test_a_constraint_a_handler_violates_only_at_the_flush_is_its_events_own(
    engine: Engine,
) -> None:
    """The handlers' ORM writes are flushed after them: the violation is found there, the
    batch redone event by event, and the event that violates it dead-lettered (it used to
    fail the whole batch, retried for ever)."""

    def remember(session: Session, data: events.EnterpriseStatusChanged) -> None:
        session.add(Seen(uscc=data.enterprise_uscc))

    uscc, other = factories.uscc(), factories.uscc()
    batch = [status_event(uscc), status_event(uscc, to="suspended"), status_event(other)]
    outcome = applier(engine, remember).apply([record(e, i) for i, e in enumerate(batch)])
    assert (outcome.processed, outcome.dead_lettered) == (2, 1)
    [(_topic, headers)] = dead_letters(engine)
    assert headers["dlq-error"].startswith("IntegrityError: ")
    assert headers["dlq-original-offset"] == "1"
    with Session(engine) as session:
        assert sorted(session.scalars(select(Seen.uscc))) == sorted([uscc, other])


def test_a_subscription_names_each_type_by_its_own_model_once() -> None:
    class NotAnEvent(events.EnterpriseStatusChanged):
        pass

    subscription = Subscription("test").on(events.EnterpriseStatusChanged, standing.apply)
    assert subscription.topics == [topics.STATUS_CHANGED]
    with pytest.raises(ValueError, match="not the model of an event type"):
        Subscription("test").on(NotAnEvent)
    with pytest.raises(ValueError, match="twice"):
        subscription.on(events.EnterpriseStatusChanged)
