"""A worker's timers run on the worker's engine and are closed when the worker stops: what a
timer opens (an HTTP client, a job it holds) is released, and no timer builds an engine of
its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from servicekit.consumer import Timer, build_app, ticker
from servicekit.db import make_engine
from servicekit.settings import BaseServiceSettings


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'worker.db'}")
    yield engine
    engine.dispose()


def test_an_async_timer_is_handed_the_workers_engine(engine: Engine) -> None:
    handed: list[Engine] = []

    async def deliver(given: Engine) -> None:
        handed.append(given)

    asyncio.run(ticker(engine, Timer("deliver", 1.0, arun=deliver))())
    assert handed == [engine]


def test_a_transactional_timer_runs_in_a_transaction_on_the_workers_engine(
    engine: Engine,
) -> None:
    seen: list[object] = []

    def sweep(session: Session) -> None:
        seen.append(session.get_bind())
        session.execute(text("CREATE TABLE swept (n INTEGER)"))
        session.execute(text("INSERT INTO swept VALUES (1)"))

    asyncio.run(ticker(engine, Timer("sweep", 1.0, run=sweep))())
    assert seen == [engine]
    with engine.connect() as conn:  # committed by the tick
        assert conn.scalar(text("SELECT n FROM swept")) == 1


def test_a_failing_tick_is_logged_and_the_worker_goes_on(engine: Engine) -> None:
    async def broken(_engine: Engine) -> None:
        raise RuntimeError("partner endpoint unreachable")

    asyncio.run(ticker(engine, Timer("broken", 1.0, arun=broken))())  # does not raise


def test_every_timers_close_hook_runs_once_when_the_worker_stops(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # faust's data directory
    closed: list[str] = []

    async def idle(_engine: Engine) -> None:
        return None

    def closer(name: str, fails: bool = False) -> Timer:
        async def close() -> None:
            closed.append(name)
            if fails:
                raise RuntimeError(f"{name} could not close")

        return Timer(name, 60.0, arun=idle, close=close)

    timers = [closer("webhook-delivery", fails=True), Timer("sweep", 60.0), closer("rescore")]
    app = build_app(BaseServiceSettings(service_name="timers"), engine, [], timers)
    assert closed == []

    async def stop_twice() -> None:
        await app.stop()
        await app.on_shutdown()  # a second shutdown closes nothing again

    asyncio.run(stop_twice())
    # one close failing does not keep the next from running
    assert closed == ["webhook-delivery", "rescore"]
