"""``/healthz``, ``/readyz`` and ``/metrics`` for a faust worker, on faust's own web server."""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import Engine

from servicekit.consumer import Timer, add_timer
from servicekit.http import Check, check_broker, check_database, run_checks
from servicekit.settings import BaseServiceSettings

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"

LAG = Gauge(
    "ucx_consumer_lag", "Records on the partition not yet committed by us", ["topic", "partition"]
)
LAG_INTERVAL_S = 5.0


def observe_lag(consumer: Any) -> None:
    """Lag per assigned partition: the log's end offset minus our committed offset (faust
    keeps the last commit per partition; before the first one, the offset we read last)."""
    LAG.clear()
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:  # not fetched yet (e.g. just after the broker came back)
            continue
        committed = consumer._committed_offset.get(tp)
        if committed is None:
            read = consumer._read_offset.get(tp)
            committed = read + 1 if read is not None else 0
        LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - committed))


def install(app: faust.App, settings: BaseServiceSettings, engine: Engine) -> None:
    def assigned() -> None:
        if app.rebalancing or not app.consumer.assignment():
            raise RuntimeError("no partitions assigned yet (joining or rebalancing)")
        if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            raise RuntimeError("table recovery not finished")

    checks: dict[str, tuple[Check, bool]] = {
        "database": (check_database(engine), True),
        "broker": (check_broker(settings.kafka_bootstrap_servers), True),
        "partitions": (assigned, True),
    }

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "service": settings.service_name})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        status, body = await run_checks(checks)
        return web.json(body, status=status)

    async def lag(_engine: Engine) -> None:
        observe_lag(app.consumer)

    add_timer(app, engine, Timer("observe-lag", LAG_INTERVAL_S, arun=lag))

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type (CONTENT_TYPE_LATEST has one)
        return web.bytes(generate_latest(), content_type=METRICS_CONTENT_TYPE)
