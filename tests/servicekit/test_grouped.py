"""servicekit.grouped, the one mechanism under the group-commit writer and the consumer's
batches, on real databases: items together in one transaction; when an item fails, the group
redone item by item in savepoints, each item with its own outcome."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, registry

from servicekit import grouped
from servicekit.db import new_metadata, session_factory

metadata: MetaData = new_metadata()
parcels = Table("parcels", metadata, Column("id", String(36), primary_key=True))


class Parcel:
    """A parcel written with the ORM: its INSERT waits for the session's next flush."""

    def __init__(self, parcel_id: str) -> None:
        self.id = parcel_id


registry().map_imperatively(Parcel, parcels)


@pytest.fixture
def engine(engine_with: Callable[[MetaData], Engine]) -> Engine:
    return engine_with(metadata)


def stored(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(parcels.c.id)).scalars())


def add(parcel_id: str) -> Callable[[Session], str]:
    """An item: one row, written at once (Core)."""

    def item(session: Session) -> str:
        session.execute(insert(parcels), {"id": parcel_id})
        return parcel_id

    return item


def refused(session: Session) -> None:
    """An item that writes, then raises."""
    session.execute(insert(parcels), {"id": "P-REFUSED"})
    raise ValueError("refused")


class Passes:
    """A body over ``items`` that records each pass: its session and whether ``each`` ran
    items alone (in a savepoint) in it."""

    def __init__(self, *items: Callable[[Session], object]) -> None:
        self.items = items
        self.passes: list[tuple[int, bool]] = []

    def __call__(self, session: Session, each: grouped.Each) -> list[grouped.Outcome[object]]:
        outcomes = []
        for item in self.items:

            def noted(s: Session, item: Callable[[Session], object] = item) -> object:
                self.passes.append((id(session), s.in_nested_transaction()))
                return item(s)

            outcomes.append(each(noted))
        return outcomes


def test_items_that_all_succeed_commit_together_in_one_pass(engine: Engine) -> None:
    body = Passes(*(add(f"P-{i:03}") for i in range(10)))
    outcomes = grouped.run(session_factory(engine), body)
    assert [o.value for o in outcomes] == [f"P-{i:03}" for i in range(10)]
    assert all(o.error is None for o in outcomes)
    assert len({session for session, _ in body.passes}) == 1  # one transaction
    assert not any(alone for _, alone in body.passes)  # no savepoints, no redo
    assert stored(engine) == [f"P-{i:03}" for i in range(10)]


def test_one_failing_item_fails_alone_on_the_redo(engine: Engine) -> None:
    body = Passes(add("P-001"), refused, add("P-002"))
    first, failed, last = grouped.run(session_factory(engine), body)
    assert (first.value, last.value) == ("P-001", "P-002")
    assert first.error is None and last.error is None
    assert isinstance(failed.error, ValueError) and failed.value is None
    assert stored(engine) == ["P-001", "P-002"]  # the failing item's own write rolled back
    # the optimistic pass stopped at the failure; the redo ran every item alone
    assert [alone for _, alone in body.passes] == [False, False, True, True, True]
    assert len({session for session, _ in body.passes}) == 2


def test_a_constraint_found_only_at_the_end_is_the_items_own(engine: Engine) -> None:
    """An ORM write is pending until the flush: the optimistic pass finds the duplicate only
    in its final flush, where no item can be blamed; the redo flushes each item alone."""

    def pending(parcel_id: str) -> Callable[[Session], str]:
        def item(session: Session) -> str:
            session.add(Parcel(parcel_id))
            return parcel_id

        return item

    outcomes = grouped.run(
        session_factory(engine), Passes(pending("P-001"), pending("P-001"), pending("P-002"))
    )
    assert [o.value for o in outcomes] == ["P-001", None, "P-002"]
    assert isinstance(outcomes[1].error, IntegrityError)
    assert stored(engine) == ["P-001", "P-002"]


def test_the_redo_tries_a_failing_item_up_to_attempts_times(engine: Engine) -> None:
    tries: list[int] = []
    told: list[tuple[int, str]] = []

    def flaky(session: Session) -> str:
        """Fails on the optimistic pass and the redo's first attempt, then succeeds."""
        tries.append(1)
        session.execute(insert(parcels), {"id": f"P-TRY-{len(tries)}"})
        if len(tries) < 3:
            raise RuntimeError(f"try {len(tries)}")
        return "done"

    def body(_session: Session, each: grouped.Each) -> list[grouped.Outcome[object]]:
        return [
            each(add("P-001")),
            each(flaky, lambda attempt, exc: told.append((attempt, str(exc)))),
        ]

    outcomes = grouped.run(session_factory(engine), body, attempts=3)
    assert [o.value for o in outcomes] == ["P-001", "done"]
    assert told == [(1, "try 2")]  # the optimistic pass is not an attempt of the item's own
    assert stored(engine) == ["P-001", "P-TRY-3"]  # each failed attempt's write rolled back

    always: list[int] = []

    def poison(_session: Session) -> None:
        always.append(1)
        raise RuntimeError("never")

    [outcome] = grouped.run(session_factory(engine), lambda _s, each: [each(poison)], attempts=3)
    assert isinstance(outcome.error, RuntimeError) and len(always) == 1 + 3


def test_what_the_body_does_beside_its_items_is_not_an_items_failure(engine: Engine) -> None:
    passes: list[Session] = []

    def body(session: Session, each: grouped.Each) -> None:
        passes.append(session)
        each(add("P-001"))
        raise LookupError("the body's own bookkeeping failed")

    with pytest.raises(LookupError):
        grouped.run(session_factory(engine), body)
    assert len(passes) == 1  # not redone: no item failed
    assert stored(engine) == []
