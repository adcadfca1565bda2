"""The live worker's running state equals the pure function over its ledger, for random
event histories delivered in random batches, with duplicates and out-of-order arrival."""

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.orm import Session

from contracts import envelope, events
from scoring import domain, policy, services
from scoring.__main__ import SPEC
from scoring.consumers import subscriptions
from scoring.models import EnterpriseAssessment, LedgerEntry
from scoring.settings import Settings
from servicekit import migrate
from servicekit.consumer import BatchApplier, Record
from servicekit.db import make_engine

import factories

POLICY = policy.load(Settings().policy_path)
USCCS = [factories.uscc(rng=random.Random(i)) for i in range(3)]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('scoring') / 'ledger.db'}"
    migrate.upgrade(SPEC.migrations, url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def random_event(rng: random.Random) -> envelope.CloudEvent:
    uscc, vin = rng.choice(USCCS), factories.vin(rng=rng)
    now = datetime.now(UTC)
    kind = rng.randrange(4)
    data: events.EventData
    if kind == 0:
        data = events.VehicleRegistered(
            enterprise_uscc=uscc,
            vin=vin,
            make="BYD",
            model="Qin Plus",
            model_year=2022,
            first_registration_date=date(2022, 6, 1),
            mileage_km=21_000,
            registered_at=now,
        )
    elif kind == 1:
        verdict = rng.choice(["pass", "fail"])
        data = events.VehicleInspected(
            enterprise_uscc=uscc,
            inspection_id=str(uuid.uuid4()),
            vin=vin,
            station_id="s",
            inspected_at=now,
            odometer_km=22_000,
            verdict=verdict,
            first_inspection=rng.random() < 0.8,
            items=[],
            failed_items=rng.sample(["BRAKES", "FIRE_DAMAGE_FREE", "TYRES"], k=1)
            if verdict == "fail"
            else [],
            fraud_signals=["odometer_rollback"] if rng.random() < 0.1 else [],
            certificate_no="EXC-1" if verdict == "pass" else None,
            valid_until=date.today() + timedelta(days=90) if verdict == "pass" else None,
        )
    elif kind == 2:
        reasons = rng.sample(
            ["inspection_missing", "certificate_mismatch", "licence_missing"], k=rng.randrange(3)
        )
        data = events.VehicleDeclared(
            enterprise_uscc=uscc,
            declaration_no=f"D{rng.randrange(10**9)}",
            vin=vin,
            broker_id="b",
            outcome="rejected" if reasons else "accepted",
            reasons=reasons,
            port_of_loading="CNSHA",
            destination_country="RU",
            declared_at=now,
        )
    else:
        data = events.VehicleExported(
            enterprise_uscc=uscc,
            declaration_no=f"D{rng.randrange(10**9)}",
            vin=vin,
            bill_of_lading="COSU1",
            vessel_name="COSCO Fortune",
            vessel_imo="9074729",
            port_of_loading="CNSHA",
            departed_at=now,
        )
    return envelope.new_event(data, source="ucx/test")


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("ledger", "assessments", "inbox", "outbox"):
            conn.execute(text(f"DELETE FROM {table}"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60))
def test_incremental_state_equals_the_pure_function_over_the_ledger(
    engine: Engine, seed: int, n: int
) -> None:
    reset(engine)
    rng = random.Random(seed)
    history = [random_event(rng) for _ in range(n)]
    deliveries = history + rng.sample(history, k=rng.randrange(0, n + 1))  # redeliveries
    rng.shuffle(deliveries)  # out-of-order arrival
    [subscription] = subscriptions(Settings(database_url=str(engine.url)))
    applier = BatchApplier(engine, subscription, max_attempts=1)
    while deliveries:
        size = rng.randint(1, 10)
        batch, deliveries = deliveries[:size], deliveries[size:]
        applier.apply(
            [
                Record(e.topic, 0, i, e.enterpriseid.encode(), envelope.encode(e))
                for i, e in enumerate(batch)
            ]
        )

    with Session(engine) as session:
        ledger = session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)).all()
        assert sorted(e.event_id for e in ledger) == sorted({e.id for e in history})
        for row in session.scalars(select(EnterpriseAssessment)):
            mine = [(e.event_id, e.type, e.data) for e in ledger if e.uscc == row.uscc]
            replayed = domain.replay(POLICY, mine)
            assert domain.Tally.model_validate(row.tally) == replayed
            assert row.score == domain.score_of(POLICY, replayed)
            assert row.tier == replayed.tier
            assert (row.emitted_score, row.emitted_tier) == (row.score, row.tier)
        assert services.verify_chain(session) == []


def test_tampering_with_the_ledger_is_detected(engine: Engine) -> None:
    reset(engine)
    rng = random.Random(7)
    [subscription] = subscriptions(Settings(database_url=str(engine.url)))
    batch = [random_event(rng) for _ in range(20)]
    BatchApplier(engine, subscription, 1).apply(
        [
            Record(e.topic, 0, i, e.enterpriseid.encode(), envelope.encode(e))
            for i, e in enumerate(batch)
        ]
    )
    with Session(engine) as session, session.begin():
        first = session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq).limit(1)).one()
        seq, uscc, data = first.seq, first.uscc, dict(first.data)
        session.execute(
            update(LedgerEntry)
            .where(LedgerEntry.seq == seq)
            .values(data={**data, "make": "Forged"})
        )
    with Session(engine) as session:
        assert services.verify_chain(session) == [uscc]
    with Session(engine) as session, session.begin():
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == seq).values(data=data))
    with Session(engine) as session:
        assert services.verify_chain(session) == []
    with Session(engine) as session, session.begin():
        session.execute(delete(LedgerEntry).where(LedgerEntry.seq == seq))
    with Session(engine) as session:
        assert services.verify_chain(session) == [uscc]
