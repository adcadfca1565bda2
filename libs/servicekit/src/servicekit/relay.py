"""The outbox relay: publishes outbox rows in order with a kafka-python producer, then marks
them sent. A crash between publish and mark re-sends; consumers dedupe by event id.

When the broker is unreachable it backs off and retries forever; the APIs keep writing to the
outbox meanwhile. On every (re)connection it provisions the topics, so a fresh, empty broker is
usable at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import structlog
from kafka import KafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy import Engine, func, select, text, update

from servicekit import tracing
from servicekit.clock import clock
from servicekit.db import is_sqlite
from servicekit.settings import BaseServiceSettings
from servicekit.tables import outbox
from servicekit.topics import provision

log = structlog.get_logger("servicekit.relay")

PUBLISHED = Counter("ucx_relay_published_total", "Outbox records published", ["topic"])
ERRORS = Counter("ucx_relay_errors_total", "Relay publish attempts that failed")
BACKLOG = Gauge("ucx_outbox_backlog", "Outbox records not yet published")
OLDEST = Gauge("ucx_outbox_oldest_unsent_age_seconds", "Age of the oldest unpublished record")

_LEADER_LOCK = 7_402_113  # pg advisory lock id: one active relay per database, others wait


class Relay:
    def __init__(self, settings: BaseServiceSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.stopping = threading.Event()
        self._producer: KafkaProducer | None = None
        self.backlog = 0
        """Unpublished records when last observed (for the relay's /readyz)."""

    # -- producer lifecycle -------------------------------------------------------------
    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            s = self.settings
            provision(
                s.kafka_bootstrap_servers,
                partitions=s.partitions,
                replication_factor=s.replication_factor,
            )
            self._producer = KafkaProducer(
                bootstrap_servers=s.kafka_bootstrap_servers,
                client_id=f"{s.service_name}-relay",
                enable_idempotence=s.kafka_idempotent_producer,
                acks="all",
                linger_ms=2,
                max_block_ms=5_000,
                request_timeout_ms=5_000,
                delivery_timeout_ms=10_000,
            )
            log.info("relay connected", bootstrap=s.kafka_bootstrap_servers)
        return self._producer

    def _disconnect(self) -> None:
        if self._producer is not None:
            with suppress(Exception):
                self._producer.close(timeout=1)
            self._producer = None

    # -- one step -------------------------------------------------------------------------
    def pending(self, limit: int) -> Sequence[Any]:
        with self.engine.connect() as conn:
            return conn.execute(
                select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()

    def publish_once(self) -> int:
        """Publish one batch; returns how many records were published."""
        rows = self.pending(self.settings.relay_batch_size)
        if not rows:
            return 0
        producer = self._connect()
        futures, parents = [], []
        for row in rows:
            headers = json.loads(row.headers)
            futures.append(
                producer.send(
                    row.topic,
                    key=row.key.encode(),
                    value=bytes(row.value),
                    headers=[(k, v.encode()) for k, v in headers],
                )
            )
            parents += [v for k, v in headers if k == "traceparent"]
        producer.flush(timeout=15)
        for future in futures:
            future.get(timeout=0)  # raises the delivery error, if any
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(sent_at=clock.now())
            )
        for row in rows:
            PUBLISHED.labels(row.topic).inc()
        # one line per batch, off the request path: a request's trace id leads here
        log.info("published", records=len(rows), trace_ids=tracing.trace_ids(parents))
        return len(rows)

    def observe_backlog(self) -> None:
        with self.engine.connect() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(
                    outbox.c.sent_at.is_(None)
                )
            ).one()
        self.backlog = count
        BACKLOG.set(count)
        OLDEST.set((clock.now() - oldest).total_seconds() if oldest else 0)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        with self._leadership():
            backoff = 0.1
            while not self.stopping.is_set():
                try:
                    published = self.publish_once()
                    backoff = 0.1
                except Exception as exc:  # noqa: BLE001 - broker or database down: retry
                    ERRORS.inc()
                    log.warning("relay step failed; retrying", error=repr(exc), backoff_s=backoff)
                    self._disconnect()
                    self.stopping.wait(backoff)
                    backoff = min(backoff * 2, self.settings.relay_backoff_max_s)
                    continue
                if published == 0:
                    self.stopping.wait(self.settings.relay_poll_interval_s)
                    with suppress(Exception):  # metrics must never stop the relay
                        self.observe_backlog()
        self._disconnect()

    def stop(self) -> None:
        self.stopping.set()

    @contextmanager
    def _leadership(self) -> Iterator[None]:
        """On PostgreSQL hold an advisory lock so one relay publishes at a time (in order)."""
        if is_sqlite(self.engine):
            yield
            return
        with self.engine.connect() as conn:
            while not self.stopping.is_set():
                leader = conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": _LEADER_LOCK}
                ).scalar()
                conn.commit()
                if leader:
                    break
                self.stopping.wait(1.0)
            yield


def replay_from(engine: Engine, since: datetime | None) -> int:
    """Mark records as unsent so the relay publishes them again (e.g. into a fresh broker)."""
    stmt = update(outbox).values(sent_at=None)
    if since is not None:
        stmt = stmt.where(outbox.c.created_at >= since)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount
