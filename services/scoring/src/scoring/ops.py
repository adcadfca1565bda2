"""The ops console: one server-rendered page at ``/ops`` (no JavaScript; it reloads itself
every few seconds). Every process's readiness (polled with httpx), consumer lag and outbox
backlog (read off their /metrics), events per minute by type (from the scoring ledger, which
sees every event), dead letters with a redrive button (admin), the tier distribution, recent
status changes with their causes, and a search by VIN (the registry's timeline) or USCC.

The page is a Jinja2 template (``templates/ops.html``) with autoescape on: every value the
page shows (a dead letter's error, an event's reason, the search text) is escaped by the
template, none by hand."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import jinja2
import uuid_utils
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contracts import topics
from scoring.models import DlqRedrive, EnterpriseAssessment, LedgerEntry
from scoring.settings import Settings
from servicekit import outbox
from servicekit.clock import clock
from servicekit.http import SessionDep
from servicekit.officials import FormOfficial

router = APIRouter(include_in_schema=False)
PROCESSES = (("api", 0), ("worker", 100), ("relay", 200))
REFRESH_S = 3
DLQ_CACHE_S = 10.0
TIERS = ("good", "warning", "suspension", "exit")
DLQ_TOPICS = frozenset(topics.dlq(name) for name in topics.ALL)

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("scoring", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass
class Process:
    service: str
    process: str
    url: str
    state: str = "down"  # ok | degraded | down
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def load(self) -> str:
        """Lag (a worker) or backlog (a relay), as the console's column shows it."""
        lag = self.metrics.get("ucx_consumer_lag")
        backlog = self.metrics.get("ucx_outbox_backlog")
        if lag is not None and self.process == "worker":
            return f"lag {lag:.0f}"
        if backlog is not None and self.process == "relay":
            oldest = self.metrics.get("ucx_outbox_oldest_unsent_age_seconds") or 0
            return f"backlog {backlog:.0f}, oldest {oldest:.0f} s"
        return ""


async def _probe(client: httpx.AsyncClient, p: Process) -> None:
    try:
        answer = await client.get(f"{p.url}/readyz")
        body = answer.json()
        failing = [c["name"] for c in body.get("checks", []) if c.get("status") != "ok"]
        p.state = "ok" if answer.status_code == 200 and not failing else "degraded"
        p.detail = ", ".join(failing) or body.get("status", "")
        if answer.status_code != 200:
            p.state = "down"
        if p.process != "api":
            metrics = (await client.get(f"{p.url}/metrics")).text
            for family in text_string_to_metric_families(metrics):
                if family.name in (
                    "ucx_consumer_lag",
                    "ucx_outbox_backlog",
                    "ucx_outbox_oldest_unsent_age_seconds",
                ):
                    p.metrics[family.name] = sum(s.value for s in family.samples)
    except (httpx.HTTPError, ValueError) as exc:
        p.state, p.detail = "down", type(exc).__name__


async def processes(settings: Settings) -> list[Process]:
    found = [
        Process(service, process, f"http://{settings.ops_host}:{port + offset}")
        for service, port in settings.ops_services.items()
        for process, offset in PROCESSES
    ]
    async with httpx.AsyncClient(timeout=1.5) as client:
        await asyncio.gather(*(_probe(client, p) for p in found))
    return found


# -- dead letters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    original_topic: str
    consumer: str
    error: str
    failed_at: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @classmethod
    def of(cls, record: Any) -> DeadLetter:
        """A dead letter from a ``.dlq`` record (the consumer's ``dlq-*`` headers)."""
        h = {k: v.decode("utf-8", "replace") for k, v in record.headers}
        return cls(
            record.topic, record.partition, record.offset,
            h.get("dlq-original-topic", record.topic.removesuffix(".dlq")),
            h.get("dlq-consumer", "?"), h.get("dlq-error", ""), h.get("dlq-failed-at", ""),
            record.key, record.value, list(record.headers),
        )  # fmt: skip


def _kafka(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        consumer_timeout_ms=500,
        request_timeout_ms=5000,
    )


def dead_letters(settings: Settings, limit_per_topic: int = 50) -> list[DeadLetter]:
    """Everything on the ``.dlq`` topics (newest ``limit_per_topic`` each)."""
    consumer = _kafka(settings)
    letters: list[DeadLetter] = []
    try:
        for dlq in sorted(DLQ_TOPICS):
            parts = [TopicPartition(dlq, p) for p in range(topics.PARTITIONS)]
            consumer.assign(parts)
            end = consumer.end_offsets(parts)
            for tp in parts:
                consumer.seek(tp, max(0, end[tp] - limit_per_topic))
            found = []
            while any(consumer.position(tp) < end[tp] for tp in parts):
                batch = consumer.poll(timeout_ms=300)
                if not batch:
                    break
                found += [DeadLetter.of(r) for records in batch.values() for r in records]
            letters.extend(found[-limit_per_topic:])
    finally:
        consumer.close()
    return letters


def letter_at(settings: Settings, topic: str, partition: int, offset: int) -> DeadLetter | None:
    """The one dead letter at this place, read from the broker (never from the page's cache:
    a letter listed a moment ago is found); None if there is none."""
    if topic not in DLQ_TOPICS or partition >= topics.PARTITIONS:
        return None
    consumer = _kafka(settings)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if offset >= consumer.end_offsets([tp])[tp]:
            return None
        consumer.seek(tp, offset)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=300, max_records=1).get(tp, []):
                return DeadLetter.of(record) if record.offset == offset else None
    finally:
        consumer.close()
    return None


class LetterCache:
    """The dead-letter listing, kept ``DLQ_CACHE_S`` (the page reloads every few seconds;
    reading every ``.dlq`` partition each time would be the console's whole cost). One per app."""

    def __init__(self) -> None:
        self.read_at = 0.0
        self.letters: list[DeadLetter] = []

    def get(self, settings: Settings) -> list[DeadLetter]:
        if time.monotonic() - self.read_at >= DLQ_CACHE_S:
            self.letters, self.read_at = dead_letters(settings), time.monotonic()
        return self.letters


def _letter_cache(request: Request) -> LetterCache:
    state = request.app.state
    if not hasattr(state, "ops_letters"):
        state.ops_letters = LetterCache()
    cache: LetterCache = state.ops_letters
    return cache


def _live_letters(settings: Settings, session: Session, cache: LetterCache) -> list[DeadLetter]:
    try:
        letters = cache.get(settings)
    except Exception:  # noqa: BLE001 - a broker outage must not take the console down
        return []
    done = {(r.topic, r.partition, r.offset) for r in session.execute(select(DlqRedrive)).scalars()}
    return [x for x in letters if (x.topic, x.partition, x.offset) not in done]


def redrive(session: Session, letter: DeadLetter) -> None:
    """Write the original record again, to its original topic and without the dlq-* headers,
    into the outbox (the relay publishes it, like every other publish), and remember the
    letter as redriven, in the caller's transaction: both happen or neither. The consumer that
    failed applies it (its inbox remembers it as dead-lettered, not processed); every other
    consumer of the topic has it as processed and skips it."""
    outbox.add_raw(
        session,
        event_id=f"redrive-{uuid_utils.uuid7()}",
        topic=letter.original_topic,
        key=(letter.key or b"").decode("utf-8", "replace"),
        value=letter.value,
        headers=[(k, v) for k, v in letter.headers if not k.startswith("dlq-")],
    )
    session.execute(
        insert(DlqRedrive).values(
            topic=letter.topic,
            partition=letter.partition,
            offset=letter.offset,
            redriven_at=clock.now(),
        )
    )


# -- the page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    type: str
    points: str
    """The sparkline's SVG polyline points."""
    total: int


def _rates(session: Session, now: datetime, minutes: int = 15) -> list[Rate]:
    since = now - timedelta(minutes=minutes)
    rows = session.execute(
        select(LedgerEntry.type, LedgerEntry.recorded_at).where(LedgerEntry.recorded_at >= since)
    ).all()
    series: dict[str, list[int]] = {}
    for type_, at in rows:
        slot = min(minutes - 1, int((at - since).total_seconds() // 60))
        series.setdefault(type_, [0] * minutes)[slot] += 1
    return [Rate(t, _sparkline(v), sum(v)) for t, v in sorted(series.items())]


def _sparkline(values: list[int], width: int = 240, height: int = 36) -> str:
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )


def _changes(session: Session) -> list[dict[str, Any]]:
    """The latest status changes the ledger saw, newest first."""
    rows = session.execute(
        select(LedgerEntry.uscc, LedgerEntry.time, LedgerEntry.data)
        .where(LedgerEntry.type == "enterprise.status-changed")
        .order_by(LedgerEntry.seq.desc())
        .limit(15)
    ).all()
    return [{"uscc": uscc, "at": at, **json.loads(data)} for uscc, at, data in rows]


@dataclass(frozen=True)
class Search:
    """What ``search.html`` shows for ``q``: an enterprise's assessment (a USCC), a vehicle's
    timeline from the registry (anything else), or why there is none."""

    q: str
    assessment: EnterpriseAssessment | None = None
    timeline: dict[str, Any] | None = None
    vehicle_status: int | None = None
    """The registry's status when it has no timeline for ``q``."""
    registry_error: str | None = None


def _search(settings: Settings, session: Session, q: str) -> Search:
    q = q.strip().upper()
    if len(q) == 18:
        return Search(q, assessment=session.get(EnterpriseAssessment, q))
    registry = f"http://{settings.ops_host}:{settings.ops_services.get('registry')}"
    try:
        answer = httpx.get(f"{registry}/v1/vehicles/{quote(q, safe='')}/timeline", timeout=3)
    except httpx.HTTPError as exc:
        return Search(q, registry_error=type(exc).__name__)
    if answer.status_code != 200:
        return Search(q, vehicle_status=answer.status_code)
    return Search(q, timeline=answer.json())


@router.get("/ops", response_class=HTMLResponse)
async def console(
    request: Request,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    now = clock.now()
    found = await processes(settings)  # first: on SQLite a session holds the write lock, and
    cache = _letter_cache(request)  # this api's own /readyz would wait for it
    tiers = dict(
        session.execute(
            select(EnterpriseAssessment.tier, func.count()).group_by(EnterpriseAssessment.tier)
        ).all()
    )
    page = TEMPLATES.get_template("ops.html").render(
        now=now,
        q=q or "",
        refresh_s=None if q else REFRESH_S,
        search=await asyncio.to_thread(_search, settings, session, q) if q else None,
        processes=found,
        rates=_rates(session, now),
        letters=await asyncio.to_thread(_live_letters, settings, session, cache),
        tiers=[(t, tiers.get(t, 0)) for t in TIERS],
        changes=_changes(session),
    )
    return HTMLResponse(page)


def _message(text: str, status_code: int) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template("message.html").render(text=text), status_code)


@router.post("/ops/dlq/redrive")
def redrive_letter(
    request: Request,
    session: SessionDep,
    topic: Annotated[str, Form(max_length=200)],
    partition: Annotated[int, Form(ge=0)],
    offset: Annotated[int, Form(ge=0)],
    _official: FormOfficial("scoring.dlq.redrive"),  # type: ignore[valid-type]
) -> Response:
    """Redrive one dead letter (an operator, with their token in the form). A letter already
    redriven, also by a request that committed a moment before this one, answers as done: it
    is published once."""
    settings: Settings = request.app.state.settings
    letter = letter_at(settings, topic, partition, offset)  # before the transaction: no lock
    if letter is None:  # held while the broker answers
        return _message("No such dead letter.", 404)
    try:
        if session.get(DlqRedrive, (topic, partition, offset)) is None:
            redrive(session, letter)
        session.commit()
    except IntegrityError:  # a concurrent redrive of the same letter committed first
        session.rollback()
    return RedirectResponse("/ops", status_code=303)
