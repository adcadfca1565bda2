"""Many items of work in one transaction, each with its own outcome: the one mechanism under the
group-commit writer (a group of requests' units) and the consumer's BatchApplier (a batch of
events).

``run(sessions, body)`` calls ``body(session, each)`` inside one transaction; ``body`` hands the
work of each item to ``each(fn)``, which returns that item's :class:`Outcome`.

- The optimistic pass: ``each`` runs ``fn`` straight in the transaction, no savepoint, and the
  transaction is flushed once at the end. If any ``fn`` raises, or a constraint is violated
  (an ``IntegrityError`` anywhere in the pass: an item's pending writes may be flushed by a
  later statement), the whole pass rolls back.
- The redo: ``body`` runs again in a fresh transaction, and now ``each`` runs every ``fn``
  alone in a savepoint, flushed inside it, up to ``attempts`` times. An item that still fails
  rolls back only its own writes; its error is its outcome and the other items commit.

What ``body`` does beside its items (a read before them, bookkeeping after) runs in both passes
and is not an item's: its exceptions propagate, as do those of the commit, to the caller (who
fails the whole group or retries it). ``body`` must not catch what ``each`` raises.

Work whose outcome is known before it runs (an event no handler takes, data that is not its
type's) is not handed to ``each``: nothing a redo does can change it, so it never costs the
other items a redo; ``body`` records it as that item's outcome in either pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

R = TypeVar("R")
X = TypeVar("X")
Failed = Callable[[int, Exception], None]
"""Told of each failed attempt of an item on the redo: ``(attempt, error)``."""


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """One item's outcome: its ``fn``'s value, or the error it failed with."""

    value: R | None = None
    error: Exception | None = None


class Each(Protocol):
    """Runs one item's work in the current pass and returns its outcome."""

    def __call__(
        self, fn: Callable[[Session], R], /, failed: Failed | None = None
    ) -> Outcome[R]: ...


class _Redo(Exception):
    """An item failed on the optimistic pass: redo the group item by item."""


class _Together:
    """The optimistic pass: no savepoints; the first failure ends the pass."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __call__(self, fn: Callable[[Session], R], /, failed: Failed | None = None) -> Outcome[R]:
        try:
            return Outcome(fn(self.session))
        except Exception as exc:
            raise _Redo from exc


class _Alone:
    """The redo: each item in its own savepoint, tried up to ``attempts`` times."""

    def __init__(self, session: Session, attempts: int) -> None:
        self.session = session
        self.attempts = attempts

    def __call__(self, fn: Callable[[Session], R], /, failed: Failed | None = None) -> Outcome[R]:
        error: Exception = RuntimeError("no attempt was made")
        for attempt in range(1, self.attempts + 1):
            try:
                with self.session.begin_nested():
                    value = fn(self.session)
                    self.session.flush()
                return Outcome(value)
            except Exception as exc:  # noqa: BLE001 - the item's own outcome
                error = exc
                if failed is not None:
                    failed(attempt, exc)
        return Outcome(error=error)


def run(
    sessions: sessionmaker[Any],
    body: Callable[[Session, Each], X],
    *,
    attempts: int = 1,
) -> X:
    """``body`` with every item together in one transaction; if that fails because of an item,
    ``body`` again with each item alone (see the module's docstring). Returns what the pass
    that committed returned."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    try:
        with sessions() as session, session.begin():
            result = body(session, _Together(session))
            session.flush()
        return result
    except (_Redo, IntegrityError):
        pass
    with sessions() as session, session.begin():
        return body(session, _Alone(session, attempts))
