"""The consumer base on faust-streaming.

Each agent reads its topics with ``concurrency=1`` and hands batches to a worker thread, which
applies them in ONE database transaction: per event, the inbox row (dedupe by CloudEvents id)
and the handler's effect; all events together first, each in a savepoint when one fails
(``servicekit.grouped``, the mechanism the group-commit writer shares). The batch commits
before faust acknowledges it, so a crash re-delivers and the inbox makes the re-delivery
change nothing.

A handler that keeps failing (``consumer_max_attempts``), or a record that is not a valid
CloudEvent, becomes a dead letter: it goes to ``<topic>.dlq`` through the outbox (same
transaction), with the error in its headers, and the partition moves on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import faust
import structlog
import uuid_utils
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session
from tenacity import retry, stop_never, wait_exponential

from contracts import envelope, topics
from contracts.envelope import CloudEvent
from contracts.events import BY_TYPE, EventData
from servicekit import grouped, logs, outbox, tracing
from servicekit.clock import clock
from servicekit.db import make_engine, session_factory
from servicekit.lifetime import child_pool
from servicekit.settings import BaseServiceSettings
from servicekit.tables import inbox

log = structlog.get_logger("servicekit.consumer")

D = TypeVar("D", bound=EventData)

PROCESSED = Counter("ucx_consumer_events_total", "Events consumed", ["agent", "outcome"])
DEAD = Counter("ucx_dlq_events_total", "Events sent to a dead-letter topic", ["topic"])
BATCH_SECONDS = Histogram("ucx_consumer_batch_seconds", "Time to apply one batch", ["agent"])


@dataclass(frozen=True)
class Handler:
    """What a subscription does with one event type: ``model`` is its data's model (the
    applier parses ``data`` into it once, before any handler runs); ``apply`` is given the
    parsed data and the envelope, or is None when the subscription's ``after_batch`` does all
    the work."""

    model: type[EventData]
    apply: Callable[[Session, Any, CloudEvent], None] | None


@dataclass(frozen=True)
class Subscription:
    """One consumer: built as ``Subscription(name).on(events.X, handler).on(...)``; each event
    type it reads is named with its data's model. ``after_batch`` runs once per batch, in the
    same transaction, with the events that were applied (their envelopes)."""

    name: str
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    after_batch: Callable[[Session, Sequence[CloudEvent]], None] | None = None

    def on(
        self, model: type[D], handler: Callable[[Session, D], None] | None = None
    ) -> Subscription:
        """Apply ``model``'s events with ``handler(session, data)``; with no handler the event
        is only parsed (a dead letter if its data is invalid) and left to ``after_batch``."""
        if handler is None:
            return self._with(model, None)
        return self._with(model, lambda session, data, _event: handler(session, data))

    def on_envelope(
        self, model: type[D], handler: Callable[[Session, D, CloudEvent], None]
    ) -> Subscription:
        """As :meth:`on`, for a handler that also needs the envelope (id, time, subject)."""
        return self._with(model, handler)

    def _with(
        self, model: type[D], apply: Callable[[Session, D, CloudEvent], None] | None
    ) -> Subscription:
        if BY_TYPE.get(model.TYPE) is not model:
            raise ValueError(f"{model.__name__} is not the model of an event type")
        if model.TYPE in self.handlers:
            raise ValueError(f"{self.name} handles {model.TYPE!r} twice")
        return replace(self, handlers={**self.handlers, model.TYPE: Handler(model, apply)})

    @property
    def topics(self) -> list[str]:
        return [BY_TYPE[t].TOPIC for t in self.handlers]


@dataclass(frozen=True)
class Timer:
    """Periodic work on the worker's engine: ``run`` in one transaction (e.g. deciding what
    waited too long), or ``arun``, async work on the worker's loop given the engine (e.g.
    HTTP, or work that commits in parts). ``close`` runs once when the worker stops, after
    its timers: it releases what the timer opened (a client, a job it holds)."""

    name: str
    interval_s: float
    run: Callable[[Session], None] | None = None
    arun: Callable[[Engine], Awaitable[object]] | None = None
    close: Callable[[], Awaitable[object]] | None = None


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class Outcomes:
    """What one batch did; ``dead_topics`` counts dead letters by original topic (the worker's
    metrics are kept by the faust process, so a child applier reports them here)."""

    processed: int = 0
    duplicate: int = 0
    dead_lettered: int = 0
    dead_topics: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Decoded:
    """One record as the applier reads it: its envelope, handler and parsed data, or the
    error that makes it a dead letter (``event`` is None when it was not a CloudEvent)."""

    record: Record
    event: CloudEvent | None
    handler: Handler | None
    data: EventData | None
    error: str | None


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class BatchApplier:
    """Applies records to the database; plain sync code so it is testable without faust."""

    def __init__(self, engine: Engine, subscription: Subscription, max_attempts: int) -> None:
        self.sessions = session_factory(engine)
        self.subscription = subscription
        self.max_attempts = max_attempts

    @retry(
        wait=wait_exponential(multiplier=0.1, max=5),
        stop=stop_never,
        reraise=True,
        before_sleep=lambda state: log.error(
            "batch failed; retrying",
            error=repr(state.outcome.exception() if state.outcome else None),
            attempt=state.attempt_number,
        ),
    )
    def apply(self, records: Sequence[Record]) -> Outcomes:
        """Retried until the database takes it: a down database must not lose events.

        Each record is decoded and its data parsed once, before the transaction: a record that
        is not a CloudEvent, an event no handler takes, or data that is not what its type
        promises is a dead letter, decided there and never a reason to redo the batch. The
        batch is applied with ``grouped.run``: all of it in one transaction, no savepoints;
        if a handler raises or a constraint is violated, that attempt rolls back and the batch
        is applied again with each event in a savepoint, tried ``max_attempts`` times, so one
        poison event is isolated and dead-lettered."""
        decoded = [self._decode(record) for record in records]
        outcomes, applied = grouped.run(
            self.sessions, partial(self._apply, decoded), attempts=self.max_attempts
        )
        if applied:  # after the commit: one line per batch, with the traces it carried
            log.info(
                "batch applied",
                agent=self.subscription.name,
                processed=outcomes.processed,
                duplicate=outcomes.duplicate,
                dead_lettered=outcomes.dead_lettered,
                trace_ids=tracing.trace_ids(e.traceparent for e in applied),
            )
        return outcomes

    def _decode(self, record: Record) -> _Decoded:
        try:
            event = envelope.decode(record.value)
        except (ValidationError, ValueError) as exc:
            return _Decoded(record, None, None, None, f"undecodable: {exc}")
        handler = self.subscription.handlers.get(event.type)
        if handler is None:
            return _Decoded(record, event, None, None, f"no handler for type {event.type!r}")
        try:
            data = event.typed_data()
        except ValidationError as exc:
            return _Decoded(record, event, handler, None, f"{type(exc).__name__}: {exc}")
        return _Decoded(record, event, handler, data, None)

    def _apply(
        self, decoded: Sequence[_Decoded], session: Session, each: grouped.Each
    ) -> tuple[Outcomes, list[CloudEvent]]:
        """One pass over the batch: inbox dedupe, each event's handler through ``each``, dead
        letters, the inbox rows and ``after_batch``; returns the outcomes and the applied
        events."""
        outcomes = Outcomes()
        known = self._known(session, decoded)
        before = dict(known)
        topics_of: dict[str, str] = {}
        applied: list[CloudEvent] = []
        for item in decoded:
            error, event = item.error, item.event
            if event is not None:
                key = self.inbox_key(event)
                if known.get(key) == "processed":
                    outcomes.duplicate += 1
                    continue
                if error is None:
                    error = self._handle(each, item)
                topics_of[key] = item.record.topic
                if error is None:
                    applied.append(event)
                    known[key] = "processed"
                    outcomes.processed += 1
                    continue
                known[key] = "dead_lettered"
            dead = self._dead_letter(session, item.record, error or "unknown error")
            outcomes.dead_lettered += 1
            outcomes.dead_topics[dead] = outcomes.dead_topics.get(dead, 0) + 1
        self._remember(session, known, before, topics_of)
        if applied and self.subscription.after_batch is not None:
            self.subscription.after_batch(session, applied)
        return outcomes, applied

    def _known(self, session: Session, decoded: Sequence[_Decoded]) -> dict[str, str]:
        """The inbox's outcomes for this batch's events, by inbox key."""
        ids = [self.inbox_key(d.event) for d in decoded if d.event is not None]
        rows = session.execute(
            select(inbox.c.event_id, inbox.c.outcome).where(inbox.c.event_id.in_(ids))
        )
        return dict(rows.all())

    def inbox_key(self, event: CloudEvent) -> str:
        """Dedupe is per consumer: two subscriptions of one service may read the same event,
        and each must apply it once."""
        return f"{self.subscription.name}:{event.id}"

    @staticmethod
    def _handle(each: grouped.Each, item: _Decoded) -> str | None:
        """The event's handler as one item of the batch; returns the error that makes it a
        dead letter, or None. A type taken with no handler (``after_batch`` does its work) is
        applied as it is, in either pass."""
        event, handler = item.event, item.handler
        assert event is not None and handler is not None
        apply = handler.apply
        if apply is None:
            return None
        tracing.begin(event.traceparent)
        structlog.contextvars.bind_contextvars(event_id=event.id)

        def failed(attempt: int, exc: Exception) -> None:
            log.warning(
                "handler failed",
                event_id=event.id,
                type=event.type,
                attempt=attempt,
                error=_error_text(exc),
                trace_id=envelope.trace_id_of(event.traceparent),
            )

        outcome = each(lambda session: apply(session, item.data, event), failed)
        return None if outcome.error is None else _error_text(outcome.error)

    @staticmethod
    def _remember(
        session: Session, known: dict[str, str], before: dict[str, str], topics_of: dict[str, str]
    ) -> None:
        """The inbox rows for this batch: inserts in bulk; a redriven dead letter is updated."""
        now = clock.now()
        new = [
            {"event_id": i, "topic": topics_of[i], "outcome": o, "processed_at": now}
            for i, o in known.items()
            if i not in before
        ]
        if new:
            session.execute(insert(inbox), new)
        for event_id, outcome in known.items():
            if event_id in before and before[event_id] != outcome:
                session.execute(
                    update(inbox)
                    .where(inbox.c.event_id == event_id)
                    .values(outcome=outcome, processed_at=now)
                )

    def _dead_letter(self, session: Session, record: Record, error: str) -> str:
        """Park the record in ``<topic>.dlq`` (via the outbox); returns the original topic."""
        topic = record.topic.removesuffix(".dlq")
        outbox.add_raw(
            session,
            event_id=f"dlq-{uuid_utils.uuid7()}",
            topic=topics.dlq(topic),
            key=(record.key or b"").decode("utf-8", "replace"),
            value=record.value,
            headers=[
                ("dlq-error", error[:2000].encode()),
                ("dlq-original-topic", topic.encode()),
                ("dlq-consumer", self.subscription.name.encode()),
                ("dlq-original-partition", str(record.partition).encode()),
                ("dlq-original-offset", str(record.offset).encode()),
                ("dlq-failed-at", clock.now().isoformat().encode()),
            ],
        )
        log.error("dead-lettered", topic=topic, offset=record.offset, error=error[:300])
        return topic


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # faust hard-codes fetch_max_wait_ms=1500; the embedded broker does not wake a waiting
        # fetch, so every hop would wait that long (DESIGN.md §6). The Fetcher reads this
        # attribute when the consumer starts.
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", 100)
        return consumer


class _Consumer(AIOKafkaConsumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(AIOKafkaTransport):
    Consumer = _Consumer


class _App(faust.App):
    fetch_max_wait_ms = 100
    closers: list[Callable[[], Awaitable[object]]]

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    async def on_shutdown(self) -> None:
        """After faust stopped the agents and timers: every timer's ``close``, each once,
        one failing not keeping the others from running."""
        await super().on_shutdown()
        closers, self.closers = self.closers, []
        for close in closers:
            try:
                await close()
            except Exception:
                log.exception("timer close failed")


def build_app(
    settings: BaseServiceSettings,
    engine: Engine,
    subscriptions: Sequence[Subscription],
    timers: Sequence[Timer] = (),
    rebuild: Rebuild | None = None,
) -> faust.App:
    """A faust app with one agent per subscription; nothing connects until it starts.
    ``rebuild`` lets each agent apply its batches in a child process when the settings say so."""
    datadir = Path("var") / "faust" / settings.service_name
    datadir.mkdir(parents=True, exist_ok=True)
    app = _App(
        f"ucx-{settings.service_name}",
        broker=[f"kafka://{b}" for b in settings.kafka_bootstrap_servers.split(",")],
        store="memory://",
        web_enabled=True,
        web_host=settings.host,
        web_port=settings.worker_web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.consumer_session_timeout_s,
        broker_heartbeat_interval=settings.consumer_heartbeat_interval_s,
        broker_rebalance_timeout=settings.consumer_rebalance_timeout_s,
        consumer_max_fetch_size=4 * 1024 * 1024,
        producer_acks=-1,
        datadir=str(datadir),
    )
    app.fetch_max_wait_ms = settings.consumer_fetch_max_wait_ms
    app.closers = []
    for subscription in subscriptions:
        _add_agent(app, settings, engine, subscription, rebuild)
    for timer in timers:
        add_timer(app, engine, timer)
    return app


def add_timer(app: faust.App, engine: Engine, timer: Timer) -> None:
    """The timer on the worker's loop with the worker's engine; its ``close`` runs when the
    worker shuts down."""
    tick = ticker(engine, timer)
    tick.__name__ = tick.__qualname__ = timer.name
    app.timer(timer.interval_s, name=timer.name)(tick)
    if timer.close is not None:
        cast(_App, app).closers.append(timer.close)


def ticker(engine: Engine, timer: Timer) -> Callable[[], Awaitable[None]]:
    """One tick of ``timer`` on ``engine``; it logs its failures instead of raising (a timer
    that raises stops the worker)."""
    sessions = session_factory(engine)

    def run_once() -> None:
        assert timer.run is not None
        with sessions() as session, session.begin():
            timer.run(session)

    async def tick() -> None:
        try:
            if timer.arun is not None:
                await timer.arun(engine)
            else:
                await asyncio.to_thread(run_once)
        except Exception:
            log.exception("timer failed", timer=timer.name)

    return tick


Rebuild = Callable[[BaseServiceSettings], Sequence[Subscription]]
"""A module-level function that builds the service's subscriptions: how a child process gets
its own (closures do not cross a process boundary; a function's name does)."""

_CHILD_APPLIERS: dict[str, BatchApplier] = {}


def _child_start(rebuild: Rebuild, settings: BaseServiceSettings, name: str) -> None:
    """In the applier process (dies with its owner: it would otherwise wait forever, holding
    both ends of its task queue, so no EOF comes): its own logs, engine and applier."""
    logs.configure(settings.service_name, "worker", settings.log_level)
    engine = make_engine(settings.database_url)
    (subscription,) = [s for s in rebuild(settings) if s.name == name]
    _CHILD_APPLIERS[name] = BatchApplier(engine, subscription, settings.consumer_max_attempts)


def _child_ready(name: str) -> bool:
    return name in _CHILD_APPLIERS


def _child_apply(name: str, records: Sequence[Record]) -> Outcomes:
    return _CHILD_APPLIERS[name].apply(records)


class ChildApplier:
    """Applies batches in one child process (``consumer_apply_in_child``): decoding, the
    handlers and the database work get a core and a GIL of their own while the faust process
    keeps fetching. The agent awaits the child's commit before faust may acknowledge, exactly
    as with the thread. A child that dies is replaced and the batch applied again (the inbox
    makes a batch it had committed change nothing). At exit, concurrent.futures lets the child
    finish its batch; if the owner is killed, the child is killed with it."""

    def __init__(self, rebuild: Rebuild, settings: BaseServiceSettings, name: str) -> None:
        self._initargs = (rebuild, settings, name)
        self._name = name
        self._pool: ProcessPoolExecutor | None = None

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = child_pool(1, _child_start, *self._initargs)
        return self._pool

    async def start(self) -> None:
        """Start the child before the first batch (its imports take seconds)."""
        await self._call(_child_ready, self._name)

    async def apply(self, records: Sequence[Record]) -> Outcomes:
        return cast(Outcomes, await self._call(_child_apply, self._name, records))

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            pool = self._started()
            try:
                return await loop.run_in_executor(pool, fn, *args)
            except BrokenProcessPool:
                log.error("applier process died; starting another", agent=self._name)
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                await asyncio.sleep(0.5)


Start = Callable[[], Awaitable[None]]
Apply = Callable[[Sequence[Record]], Awaitable[Outcomes]]


def _add_agent(
    app: faust.App,
    settings: BaseServiceSettings,
    engine: Engine,
    subscription: Subscription,
    rebuild: Rebuild | None,
) -> None:
    """One faust agent for ``subscription``: its batches applied in order, each acknowledged
    after its commit."""
    channel = app.topic(*subscription.topics, key_serializer="raw", value_serializer="raw")
    start, apply = _applier(settings, engine, subscription, rebuild)

    async def apply_and_ack(stream: Any, events: Sequence[Any]) -> None:
        started = time.perf_counter()
        outcomes = await apply([_record(e.message) for e in events])
        for event in events:  # only now may faust commit these offsets
            await stream.ack(event)
        _count(subscription.name, outcomes, time.perf_counter() - started)

    agent = _pipelined(settings, start, apply_and_ack)
    agent.__name__ = agent.__qualname__ = subscription.name
    app.agent(channel, name=subscription.name, concurrency=1)(agent)


def _applier(
    settings: BaseServiceSettings,
    engine: Engine,
    subscription: Subscription,
    rebuild: Rebuild | None,
) -> tuple[Start, Apply]:
    """How the agent starts its applier and applies a batch: in a child process when the
    settings say so (and the subscriptions can be rebuilt there), else on a worker thread."""
    if settings.consumer_apply_in_child and rebuild is not None:
        child = ChildApplier(rebuild, settings, subscription.name)
        return child.start, child.apply
    applier = BatchApplier(engine, subscription, settings.consumer_max_attempts)

    async def start() -> None:
        return None

    async def apply(records: Sequence[Record]) -> Outcomes:
        return await asyncio.to_thread(applier.apply, records)

    return start, apply


def _record(message: Any) -> Record:
    return Record(message.topic, message.partition, message.offset, message.key, message.value)


def _count(agent: str, outcomes: Outcomes, seconds: float) -> None:
    """The batch's metrics, kept by the faust process."""
    BATCH_SECONDS.labels(agent).observe(seconds)
    for outcome in ("processed", "duplicate", "dead_lettered"):
        if n := getattr(outcomes, outcome):
            PROCESSED.labels(agent, outcome).inc(n)
    for topic, n in outcomes.dead_topics.items():
        DEAD.labels(topic).inc(n)


def _pipelined(
    settings: BaseServiceSettings,
    start: Start,
    apply_and_ack: Callable[[Any, Sequence[Any]], Awaitable[None]],
) -> Callable[[Any], Awaitable[None]]:
    """The agent: faust gathers batches while the applier task applies the ones before: in
    order, what queued up while it worked merged into one transaction (up to
    ``consumer_merge_max`` records), each acknowledged only after its commit."""

    async def agent(stream: Any) -> None:
        queue: asyncio.Queue[Sequence[Any]] = asyncio.Queue(maxsize=4)  # then faust waits

        async def applier() -> None:
            while True:
                events = list(await queue.get())
                while not queue.empty() and len(events) < settings.consumer_merge_max:
                    events.extend(queue.get_nowait())
                await apply_and_ack(stream, events)

        await start()
        applying = asyncio.create_task(applier())
        try:
            async for events in stream.noack_take(
                settings.consumer_batch_size, within=settings.consumer_batch_within_s
            ):
                put = asyncio.ensure_future(queue.put(events))
                await asyncio.wait({put, applying}, return_when=asyncio.FIRST_COMPLETED)
                if applying.done():  # it failed: stop, unacknowledged batches come again
                    put.cancel()
                    applying.result()
        finally:
            applying.cancel()

    return agent
