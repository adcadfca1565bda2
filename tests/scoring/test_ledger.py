"""The live worker's running state equals the pure function over its ledger, for random
event histories spread over two years, delivered in random batches on a moving clock, with
duplicates, out-of-order arrival and the daily clock ticks between them: under policy v1 and
under v2 (the default)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
import scoring_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scoring_events import START, random_event
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.orm import Session

from contracts import envelope, events
from contracts.envelope import CloudEvent
from scoring import domain, policy, services
from scoring.__main__ import SPEC
from scoring.consumers import subscriptions
from scoring.models import EnterpriseAssessment, LedgerEntry
from scoring.settings import POLICIES, Settings
from servicekit import migrate
from servicekit.consumer import BatchApplier, Record
from servicekit.db import make_engine

import factories

POLICY = policy.load(Settings().policy_path)
POLICIES_BY_VERSION = {v: policy.load(POLICIES / f"{v}.yaml") for v in ("v1", "v2")}
USCCS = scoring_events.USCCS


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('scoring') / 'ledger.db'}"
    migrate.upgrade(SPEC.migrations, url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("ledger", "assessments", "assessment_changes", "exported_vins", "inbox"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("DELETE FROM outbox"))


def on_clock(engine: Engine, clock: list[datetime], rules: policy.Policy = POLICY) -> BatchApplier:
    """The worker's own subscription, with the batch moment taken from ``clock``."""
    [real] = subscriptions(Settings(database_url=str(engine.url)))

    def after_batch(session: Session, batch: Sequence[CloudEvent]) -> None:
        services.record_batch(session, rules, batch, now=clock[0])

    return BatchApplier(engine, replace(real, after_batch=after_batch), 1)


def records(batch: Sequence[CloudEvent]) -> list[Record]:
    return [
        Record(e.topic, 0, i, e.enterpriseid.encode(), envelope.encode(e))
        for i, e in enumerate(batch)
    ]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80))
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_incremental_state_equals_the_pure_function_over_the_ledger(
    engine: Engine, version: str, seed: int, n: int
) -> None:
    rules = POLICIES_BY_VERSION[version]
    reset(engine)
    rng = random.Random(seed)
    vins: list[str] = []
    history = [random_event(rng, vins) for _ in range(n)]
    deliveries = history + rng.sample(history, k=rng.randrange(0, n + 1))  # redeliveries
    rng.shuffle(deliveries)  # out-of-order arrival
    clock = [START]
    applier = on_clock(engine, clock, rules)
    while deliveries:
        clock[0] += timedelta(days=rng.uniform(0, 60))
        if rng.random() < 0.3:
            with Session(engine) as session, session.begin():
                services.reevaluate(session, rules, clock[0])
        size = rng.randint(1, 10)
        batch, deliveries = deliveries[:size], deliveries[size:]
        applier.apply(records(batch))

    with Session(engine) as session:
        ledger = session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)).all()
        seen = [e.event_id for e in ledger if e.type != domain.TICK]
        assert sorted(seen) == sorted({e.id for e in history})  # each exactly once
        replayed = domain.replay(rules, services.ledger_entries(session))
        rows = session.scalars(select(EnterpriseAssessment)).all()
        assert {r.uscc for r in rows} == set(replayed)
        for row in rows:
            stored = domain.State.from_json(row.state)
            assert stored == replayed[row.uscc]
            assert (row.score, row.tier) == (stored.score, stored.tier)
            # the fold's per-event score is the one the full assessment computes
            assert stored.moment is not None
            assert domain.evaluate(rules, stored, stored.moment).score == stored.score
            assert (row.emitted_score, row.emitted_tier) == (row.score, row.tier)
            assert row.policy_version == version
        assert services.verify_chain(session) == (len(ledger), [])


def test_the_clock_ages_events_out_and_records_the_moment(engine: Engine) -> None:
    reset(engine)
    rng = random.Random(3)
    uscc = USCCS[0]
    fails = []
    for _ in range(10):
        data = events.VehicleInspected(
            enterprise_uscc=uscc, inspection_id=str(uuid.uuid4()), vin=factories.vin(rng=rng),
            station_id="s", inspected_at=START, odometer_km=1, verdict="fail",
            first_inspection=True, items=[], failed_items=["BRAKES"],
        )  # fmt: skip
        registered = events.VehicleRegistered(
            enterprise_uscc=uscc, vin=data.vin, make="BYD", model="Qin Plus", model_year=2022,
            first_registration_date=date(2022, 6, 1), mileage_km=21_000, registered_at=START,
        )  # fmt: skip
        fails.append(envelope.new_event(registered, source="ucx/test", time=START))
        fails.append(envelope.new_event(data, source="ucx/test", time=START))
    clock = [START + timedelta(hours=1)]
    on_clock(engine, clock).apply(records(fails))
    with Session(engine) as session:
        before = services.get_row(session, uscc)
        # quality 0 (10 of 10 failed), integrity 25, gate compliance and after-sales at the
        # prior 0.9 (nothing declared or exported): 25 + 18 + 18
        assert (before.score, before.tier) == (61.0, "warning")
    with Session(engine) as session, session.begin():
        assert services.reevaluate(session, POLICY, START + timedelta(days=100)) == 0
    with Session(engine) as session, session.begin():
        assert services.reevaluate(session, POLICY, START + timedelta(days=366)) == 1
    with Session(engine) as session:
        after = services.get_row(session, uscc)
        # nothing in the window: every rated component at the prior, 0.9 * 95
        assert (after.score, after.tier) == (85.5, "good")
        ticks = session.scalars(select(LedgerEntry).where(LedgerEntry.type == domain.TICK)).all()
        assert len(ticks) == 1
        replayed = domain.replay(POLICY, services.ledger_entries(session))[uscc]
        assert domain.State.from_json(after.state) == replayed


def at(made: CloudEvent, moment: datetime) -> CloudEvent:
    return made.model_copy(update={"time": moment})


def ticks(engine: Engine) -> list[str]:
    with Session(engine) as session:
        ledger = select(LedgerEntry.event_id).where(LedgerEntry.type == domain.TICK)
        return list(session.scalars(ledger.order_by(LedgerEntry.seq)))


def test_the_clock_ticks_an_enterprise_once_a_day_whichever_worker_found_it_due(
    engine: Engine,
) -> None:
    """Every worker process runs the clock. One finds the enterprise due, another ticks it
    (its first day left the window), and a boundary passes before the first gets the lock (a
    complaint leaves the window later that day): the first writes nothing. A tick's id is
    its enterprise's and day's; the next day's is the next day's tick."""
    reset(engine)
    uscc = USCCS[1]
    history = [at(scoring_events.registered(uscc), START) for _ in range(3)]
    history += [at(scoring_events.inspected(uscc, "fail"), START) for _ in range(3)]
    history.append(at(scoring_events.complaint(uscc), START + timedelta(hours=12)))
    on_clock(engine, [START + timedelta(hours=13)]).apply(records(history))
    morning, evening = START + timedelta(days=365, hours=1), START + timedelta(days=365, hours=13)
    with Session(engine) as session, session.begin():
        found = services.due(session, morning)  # before the other worker's tick commits
    assert found == [uscc]
    with Session(engine) as session, session.begin():
        assert services.reevaluate(session, POLICY, morning) == 1  # the other worker
    with Session(engine) as session, session.begin():
        assert services.tick(session, POLICY, found, evening) == 0
    assert ticks(engine) == [f"tick-{uscc}-2026-01-01"] == [domain.tick_id(uscc, evening)]

    with Session(engine) as session, session.begin():  # the next day: the complaint is out
        assert services.reevaluate(session, POLICY, evening + timedelta(hours=12)) == 1
    assert ticks(engine) == [f"tick-{uscc}-2026-01-01", f"tick-{uscc}-2026-01-02"]
    with Session(engine) as session:
        stored = domain.State.from_json(services.get_row(session, uscc).state)
        assert stored == domain.replay(POLICY, services.ledger_entries(session))[uscc]


def test_tampering_with_the_ledger_is_detected(engine: Engine) -> None:
    reset(engine)
    rng = random.Random(7)
    clock = [START]
    vins: list[str] = []
    on_clock(engine, clock).apply(records([random_event(rng, vins) for _ in range(20)]))
    with Session(engine) as session, session.begin():
        first = session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq).limit(1)).one()
        seq, uscc, data = first.seq, first.uscc, first.data
        forged = data.replace('"enterprise_uscc"', '"enterprise_uscc_"')
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == seq).values(data=forged))
    with Session(engine) as session:
        assert services.verify_chain(session) == (20, [uscc])
    with Session(engine) as session, session.begin():
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == seq).values(data=data))
    with Session(engine) as session:
        assert services.verify_chain(session) == (20, [])
    with Session(engine) as session, session.begin():
        session.execute(delete(LedgerEntry).where(LedgerEntry.seq == seq))
    with Session(engine) as session:
        assert services.verify_chain(session) == (19, [uscc])
    with Session(engine) as session, session.begin():
        last = session.scalars(
            select(LedgerEntry).where(LedgerEntry.uscc == uscc).order_by(LedgerEntry.seq.desc())
        ).first()
        assert last is not None
        session.execute(delete(LedgerEntry).where(LedgerEntry.seq == last.seq))
    with Session(engine) as session:
        assert uscc in services.verify_chain(session)[1]  # also caught: a removed newest row
