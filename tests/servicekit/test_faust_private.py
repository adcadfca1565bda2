"""The two places servicekit reaches into faust's and aiokafka's private state, checked on the
real objects a real faust app builds: a release that renames either fails here instead of
silently making every hop wait faust's hard-coded 1.5 s again, or freezing the lag gauge.
faust-streaming is pinned below its next minor version (libs/servicekit/pyproject.toml);
aiokafka comes with it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import faust
import pytest
from faust.types import TP
from sqlalchemy import Engine

from servicekit.broker import EmbeddedBroker
from servicekit.consumer import build_app
from servicekit.db import make_engine
from servicekit.settings import BaseServiceSettings
from servicekit.worker_web import LAG, observe_lag

FETCH_WAIT_MS = 73
"""Neither aiokafka's default (500) nor faust's (1500): only the override can produce it."""


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.chdir(tmp_path)  # faust's data directory
    engine = make_engine(f"sqlite:///{tmp_path / 'worker.db'}")
    yield engine
    engine.dispose()


def worker_app(broker: EmbeddedBroker, engine: Engine) -> faust.App:
    settings = BaseServiceSettings(
        service_name="fetch-wait",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        consumer_fetch_max_wait_ms=FETCH_WAIT_MS,
    )
    return build_app(settings, engine, [])


def test_the_workers_fetches_wait_the_setting_not_fausts_one_and_a_half_seconds(
    broker: EmbeddedBroker, engine: Engine
) -> None:
    app = worker_app(broker, engine)

    async def fetcher_wait() -> tuple[int, int]:
        thread = app.consumer._thread  # the consumer thread faust starts for the worker
        kafka = thread._create_worker_consumer(app.transport)  # as faust builds it
        await kafka.start()
        try:  # the Fetcher is built on start from the consumer's attribute: what is in effect
            return kafka._fetch_max_wait_ms, kafka._fetcher._fetch_max_wait_ms
        finally:
            await kafka.stop()

    assert asyncio.run(fetcher_wait()) == (FETCH_WAIT_MS, FETCH_WAIT_MS)


def test_the_lag_gauge_reads_the_offsets_faust_keeps(
    broker: EmbeddedBroker, engine: Engine
) -> None:
    consumer = worker_app(broker, engine).consumer
    committed, read = consumer._committed_offset, consumer._read_offset
    assert isinstance(committed, MutableMapping) and isinstance(read, MutableMapping)
    keeper = next(c for c in type(consumer).__mro__ if "_commit_offsets" in vars(c))
    source = inspect.getsource(keeper)  # the code that keeps them writes these very names
    assert "self._committed_offset.update(" in source  # after each commit
    assert "self._read_offset.__setitem__" in source  # per record read
    tp = TP("vehicle.inspected.v1", 2)
    committed[tp] = 40  # as faust leaves them: 40 committed on partition 2, nothing on 3

    class Assigned:
        """The consumer's public face the gauge also reads (assignment, highwater)."""

        _committed_offset = committed
        _read_offset = read

        def assignment(self) -> set[TP]:
            return {tp, TP("vehicle.inspected.v1", 3)}

        def highwater(self, partition: TP) -> int:
            return 45

    observe_lag(Assigned())
    lag = {s.labels["partition"]: s.value for m in LAG.collect() for s in m.samples}
    assert lag == {"2": 5, "3": 45}  # committed 40 of 45; nothing read or committed of 45
