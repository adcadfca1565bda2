"""Group commit: one writer thread per process runs the units of work that requests queue,
as many as are waiting, in ONE transaction (each unit in a savepoint), and commits once.

On SQLite this replaces threads fighting over the write lock (busy waits, a long latency tail)
with one orderly writer; on PostgreSQL it turns N fsyncs into one. A unit that raises affects
only itself: its savepoint rolls back and its caller gets the exception.
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

from servicekit import idempotency
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


class _Redo(Exception):
    """The optimistic pass failed: redo the group unit by unit."""


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
        """Optimistic first: every unit, one flush, one commit. If any unit raises or the
        flush violates a constraint, roll back and redo unit by unit in savepoints, so each
        caller gets exactly its own outcome."""
        try:
            outcomes = self._all_at_once(group)
        except _Redo:
            outcomes = self._one_by_one(group)
        except Exception as exc:
            log.exception("group commit failed", units=len(group))
            outcomes = [(unit, None, exc) for unit in group]
        if _PAUSE_AFTER_COMMIT_S:
            time.sleep(_PAUSE_AFTER_COMMIT_S)
        for unit, result, error in outcomes:
            unit.loop.call_soon_threadsafe(_settle, unit.future, result, error)

    def _all_at_once(self, group: list[_Unit]) -> list[tuple[_Unit, Any, BaseException | None]]:
        with self._sessions() as session:
            with session.begin():
                results = []
                for unit in group:
                    try:
                        results.append(unit.context.run(unit.fn, session))
                    except Exception as exc:
                        raise _Redo from exc
                try:
                    session.flush()
                except IntegrityError as exc:
                    raise _Redo from exc
            return [(unit, result, None) for unit, result in zip(group, results, strict=True)]

    def _one_by_one(self, group: list[_Unit]) -> list[tuple[_Unit, Any, BaseException | None]]:
        outcomes: list[tuple[_Unit, Any, BaseException | None]] = []
        with self._sessions() as session, session.begin():
            for unit in group:
                try:
                    with session.begin_nested():
                        result = unit.context.run(unit.fn, session)
                        session.flush()
                    outcomes.append((unit, result, None))
                except IntegrityError as exc:
                    error = unit.on_integrity_error(exc) if unit.on_integrity_error else exc
                    outcomes.append((unit, None, error))
                except Exception as exc:  # noqa: BLE001 - the unit's caller gets it
                    outcomes.append((unit, None, exc))
        return outcomes


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the request went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
