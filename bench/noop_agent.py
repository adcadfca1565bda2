"""The scoring baseline: one no-op faust agent over the four vehicle topics.

``python -m bench.noop_agent`` with ``KAFKA_BOOTSTRAP_SERVERS``, ``BENCH_GROUP`` (a fresh
consumer group), ``BENCH_WEB_PORT``, ``BENCH_EXPECT`` and ``BENCH_RESULT`` (a JSON file written
when the agent has seen ``BENCH_EXPECT`` events). The app comes from servicekit's
``build_app`` with no subscriptions, so broker, fetch and group settings are the worker's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import faust
from faust.worker import Worker
from sqlalchemy import create_engine

from contracts import topics
from servicekit.consumer import build_app
from servicekit.settings import BaseServiceSettings


def add_counter(app: faust.App, expect: int, result: Path) -> None:
    channel = app.topic(*topics.VEHICLE_TOPICS, key_serializer="raw", value_serializer="raw")
    first_at = 0.0
    seen = 0

    async def noop(stream: Any) -> None:
        nonlocal first_at, seen
        async for _event in stream.events():
            seen += 1
            if seen == 1:
                first_at = time.time()
            if seen == expect:
                summary = {"events": seen, "first_at": first_at, "last_at": time.time()}
                draft = result.with_suffix(".tmp")
                draft.write_text(json.dumps(summary))
                draft.replace(result)  # atomic: the bench never reads half a file

    app.agent(channel, name="noop", concurrency=1)(noop)


def main() -> int:
    settings = BaseServiceSettings(
        service_name=os.environ["BENCH_GROUP"],
        kafka_bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        worker_port=int(os.environ["BENCH_WEB_PORT"]),
    )
    app = build_app(settings, create_engine("sqlite://"), subscriptions=())
    add_counter(app, int(os.environ["BENCH_EXPECT"]), Path(os.environ["BENCH_RESULT"]))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker: Any = Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False, loop=loop)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
