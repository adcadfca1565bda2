"""Group commit: one writer thread per process runs the units of work that requests queue,
as many as are waiting, in ONE transaction (each unit in a savepoint), and commits once.

On SQLite this replaces threads fighting over the write lock (busy waits, a long latency tail)
with one orderly writer; on PostgreSQL it turns N fsyncs into one. A unit that raises affects
only itself: the group is redone unit by unit, its savepoint rolls back and its caller gets the
exception (``servicekit.grouped``, the mechanism the consumer's batches share).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from prometheus_client import Histogram
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicekit import grouped, idempotency
from servicekit.db import session_factory

T = TypeVar("T")
log = structlog.get_logger("servicekit.writer")
GROUP_SIZE = Histogram(
    "ucx_writer_group_size", "Units of work per group commit", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)


@dataclass
class _Unit:
    fn: Callable[[Session], Any]
    context: contextvars.Context
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    on_integrity_error: Callable[[IntegrityError], Exception] | None

    def __call__(self, session: Session) -> Any:
        """The unit's work, in the context of the request that queued it."""
        return self.context.run(self.fn, session)


class _KeyTaken(Exception):
    """Another process committed an answer under the same Idempotency-Key first."""


_PAUSE_AFTER_COMMIT_S = float(os.environ.get("UCX_TEST_PAUSE_AFTER_COMMIT_S", "0") or 0)
"""Test-only: hold each group's answers this long after its commit (a crash test kills the
process in that window). Never set in production."""


class Writer:
    def __init__(self, engine: Engine, max_group: int = 128) -> None:
        self._sessions = session_factory(engine)
        self._queue: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._max_group = max_group
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    async def run(
        self,
        fn: Callable[[Session], T],
        on_integrity_error: Callable[[IntegrityError], Exception] | None = None,
    ) -> T:
        """Run ``fn`` inside the next group's transaction; returns after the commit.
        ``on_integrity_error`` turns a constraint violation of this unit's writes (found when
        they are flushed) into the exception its caller should get, e.g. a 409."""
        self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Unit(fn, contextvars.copy_context(), loop, future, on_integrity_error))
        return await future

    async def run_idempotent(
        self,
        attempt: idempotency.Attempt | None,
        fn: Callable[[Session], T],
        render: Callable[[T], idempotency.Answer],
        on_integrity_error: Callable[[IntegrityError], Exception] | None = None,
    ) -> idempotency.Answer:
        """``run`` for a POST that takes an Idempotency-Key: inside the unit, the first answer
        is replayed, or ``fn`` runs and ``render``'s answer is remembered in the same
        transaction (``idempotency.answer_in``). Without a key: ``fn``, then ``render``
        outside the writer thread."""
        if attempt is None:
            return render(await self.run(fn, on_integrity_error))
        key = attempt

        def unit(session: Session) -> idempotency.Answer:
            return idempotency.answer_in(session, key, lambda s: render(fn(s)), on_integrity_error)

        try:
            return await self.run(unit, on_integrity_error=lambda _exc: _KeyTaken())
        except _KeyTaken:  # its answer is committed now: this run replays it
            return await self.run(unit, on_integrity_error)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self._max_group:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(unit)
            GROUP_SIZE.observe(len(group))
            self._commit(group)

    def _commit(self, group: list[_Unit]) -> None:
        """Every unit together, one flush, one commit; if a unit raises or a constraint is
        violated, the group is redone unit by unit in savepoints (``grouped.run``), so each
        caller gets exactly its own outcome. If the group cannot commit at all, every caller
        gets that error."""

        def body(_session: Session, each: grouped.Each) -> list[grouped.Outcome[Any]]:
            return [each(unit) for unit in group]

        settled: list[tuple[Any, BaseException | None]]
        try:
            outcomes = grouped.run(self._sessions, body)
            settled = [(o.value, _own(u, o.error)) for u, o in zip(group, outcomes, strict=True)]
        except Exception as exc:
            log.exception("group commit failed", units=len(group))
            settled = [(None, exc)] * len(group)
        if _PAUSE_AFTER_COMMIT_S:
            time.sleep(_PAUSE_AFTER_COMMIT_S)
        for unit, (result, error) in zip(group, settled, strict=True):
            unit.loop.call_soon_threadsafe(_settle, unit.future, result, error)


def _own(unit: _Unit, error: Exception | None) -> Exception | None:
    """A unit's error as its caller gets it: its constraint violation through its
    ``on_integrity_error`` (e.g. a 409), anything else as raised."""
    if isinstance(error, IntegrityError) and unit.on_integrity_error is not None:
        return unit.on_integrity_error(error)
    return error


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the request went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
