"""The group-commit writer, directly: units queued together commit in one transaction; a unit
that raises, or whose writes violate a constraint, fails alone (the group is redone unit by
unit in savepoints) and its caller gets exactly its own outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, insert, select
from sqlalchemy.orm import Session

from servicekit.db import new_metadata
from servicekit.problems import Conflict, Problem
from servicekit.writer import Writer

metadata: MetaData = new_metadata()
parcels = Table("parcels", metadata, Column("id", String(36), primary_key=True))


@pytest.fixture
def engine(engine_with: Callable[[MetaData], Engine]) -> Engine:
    return engine_with(metadata)


@pytest.fixture
def writer(engine: Engine) -> Iterator[Writer]:
    writer = Writer(engine)
    writer.start()
    yield writer
    writer.stop()


def stored(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(parcels.c.id)).scalars())


def add(parcel_id: str, sessions: list[int] | None = None) -> Callable[[Session], str]:
    def unit(session: Session) -> str:
        if sessions is not None:
            sessions.append(id(session))
        session.connection().execute(insert(parcels), {"id": parcel_id})
        return parcel_id

    return unit


async def grouped(writer: Writer, *units: Callable[[Session], Any]) -> list[Any]:
    """Run ``units`` as one group: a first unit holds the writer until all are queued."""
    release = threading.Event()
    held = asyncio.ensure_future(writer.run(lambda _s: release.wait(5)))
    await asyncio.sleep(0.05)  # the writer is inside the holding unit
    futures = [
        asyncio.ensure_future(writer.run(u, lambda _e: Conflict("dup", "dup"))) for u in units
    ]
    await asyncio.sleep(0.05)  # all queued
    release.set()
    await held
    return list(await asyncio.gather(*futures, return_exceptions=True))


def test_units_queued_together_commit_in_one_transaction(writer: Writer, engine: Engine) -> None:
    sessions: list[int] = []
    outcomes = asyncio.run(grouped(writer, *(add(f"P-{i:03}", sessions) for i in range(12))))
    assert outcomes == [f"P-{i:03}" for i in range(12)]
    assert len(set(sessions)) == 1
    assert stored(engine) == [f"P-{i:03}" for i in range(12)]


def test_a_unit_that_raises_fails_alone(writer: Writer, engine: Engine) -> None:
    def refused(session: Session) -> None:
        session.connection().execute(insert(parcels), {"id": "P-REFUSED"})
        raise Problem("parcel-refused", "refused", status=422)

    outcomes = asyncio.run(grouped(writer, add("P-001"), refused, add("P-002")))
    assert outcomes[0] == "P-001" and outcomes[2] == "P-002"
    assert isinstance(outcomes[1], Problem) and outcomes[1].type_ == "parcel-refused"
    assert stored(engine) == ["P-001", "P-002"]  # the refused unit's write rolled back


def test_a_constraint_violation_is_its_units_own(writer: Writer, engine: Engine) -> None:
    outcomes = asyncio.run(grouped(writer, add("P-001"), add("P-001"), add("P-002")))
    assert outcomes[0] == "P-001" and outcomes[2] == "P-002"
    assert isinstance(outcomes[1], Conflict)
    assert stored(engine) == ["P-001", "P-002"]
