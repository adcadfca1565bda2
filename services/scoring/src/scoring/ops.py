"""The ops console: one server-rendered page at ``/ops`` (no JavaScript; it reloads itself
every few seconds). Every process's readiness (polled with httpx), consumer lag and outbox
backlog (read off their /metrics), events per minute by type (from the scoring ledger, which
sees every event), dead letters with a redrive button (admin), the tier distribution, recent
status changes with their causes, and a search by VIN (the registry's timeline) or USCC."""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from contracts import topics
from scoring.models import DlqRedrive, EnterpriseAssessment, LedgerEntry
from scoring.settings import Settings
from servicekit.clock import clock
from servicekit.http import SessionDep

router = APIRouter(include_in_schema=False)
PROCESSES = (("api", 0), ("worker", 100), ("relay", 200))
REFRESH_S = 3
DLQ_CACHE_S = 10.0


@dataclass
class Process:
    service: str
    process: str
    url: str
    state: str = "down"  # ok | degraded | down
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


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


_dlq_cache: tuple[float, list[DeadLetter]] = (0.0, [])


def dead_letters(settings: Settings, limit_per_topic: int = 50) -> list[DeadLetter]:
    """Everything on the ``.dlq`` topics (newest ``limit_per_topic`` each), cached briefly."""
    global _dlq_cache
    if time.monotonic() - _dlq_cache[0] < DLQ_CACHE_S:
        return _dlq_cache[1]
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        consumer_timeout_ms=500,
        request_timeout_ms=5000,
    )
    letters: list[DeadLetter] = []
    try:
        for name in topics.ALL:
            dlq = topics.dlq(name)
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
                for records in batch.values():
                    for r in records:
                        h = {k: v.decode("utf-8", "replace") for k, v in r.headers}
                        found.append(
                            DeadLetter(
                                dlq, r.partition, r.offset, h.get("dlq-original-topic", name),
                                h.get("dlq-consumer", "?"), h.get("dlq-error", ""),
                                h.get("dlq-failed-at", ""), r.key, r.value, list(r.headers),
                            )
                        )  # fmt: skip
            letters.extend(found[-limit_per_topic:])
    finally:
        consumer.close()
    _dlq_cache = (time.monotonic(), letters)
    return letters


def redrive(settings: Settings, letter: DeadLetter) -> None:
    """Publish the original record again, to its original topic, without the dlq-* headers:
    the consumer that failed applies it (its inbox remembers it as dead-lettered, not
    processed); every other consumer of the topic has it as processed and skips it."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    try:
        headers = [(k, v) for k, v in letter.headers if not k.startswith("dlq-")]
        producer.send(letter.original_topic, key=letter.key, value=letter.value, headers=headers)
        producer.flush(10)
    finally:
        producer.close()


def _events_per_minute(session: Session, now: datetime, minutes: int = 15) -> dict[str, list[int]]:
    since = now - timedelta(minutes=minutes)
    rows = session.execute(
        select(LedgerEntry.type, LedgerEntry.recorded_at).where(LedgerEntry.recorded_at >= since)
    ).all()
    series: dict[str, list[int]] = {}
    for type_, at in rows:
        slot = min(minutes - 1, int((at - since).total_seconds() // 60))
        series.setdefault(type_, [0] * minutes)[slot] += 1
    return dict(sorted(series.items()))


def _sparkline(values: list[int], width: int = 240, height: int = 36) -> str:
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" role="img" '
        f'aria-label="events per minute"><polyline fill="none" stroke="#2563eb" '
        f'stroke-width="2" points="{points}"/></svg>'
    )


def _e(value: object) -> str:
    return html.escape(str(value))


CSS = """
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#111}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.6rem}
table{border-collapse:collapse}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
tr.ok td.state{background:#16a34a;color:#fff}tr.degraded td.state{background:#d97706;color:#fff}
tr.down td.state{background:#dc2626;color:#fff}.muted{color:#666}.spark{vertical-align:middle}
form.inline{display:inline}
"""


def _process_rows(found: Iterable[Process]) -> str:
    rows = []
    for p in found:
        lag = p.metrics.get("ucx_consumer_lag")
        backlog = p.metrics.get("ucx_outbox_backlog")
        oldest = p.metrics.get("ucx_outbox_oldest_unsent_age_seconds")
        extra = []
        if lag is not None and p.process == "worker":
            extra.append(f"lag {lag:.0f}")
        if backlog is not None and p.process == "relay":
            extra.append(f"backlog {backlog:.0f}, oldest {oldest or 0:.0f} s")
        rows.append(
            f'<tr id="{_e(p.service)}-{_e(p.process)}" class="{p.state}">'
            f"<td>{_e(p.service)}</td><td>{_e(p.process)}</td>"
            f'<td class="state">{p.state}</td><td>{_e(", ".join(extra))}</td>'
            f'<td class="muted">{_e(p.detail)}</td></tr>'
        )
    return "".join(rows)


def _search(settings: Settings, session: Session, q: str) -> str:
    q = q.strip().upper()
    if len(q) == 18:
        row = session.get(EnterpriseAssessment, q)
        if row is None:
            return f"<p>No assessment for enterprise {_e(q)}.</p>"
        return (
            f'<table id="search-result"><tr><th>USCC</th><td>{_e(row.uscc)}</td></tr>'
            f"<tr><th>score</th><td>{row.score}</td></tr><tr><th>tier</th><td>{_e(row.tier)}</td>"
            f"</tr><tr><th>events</th><td>{row.events_counted}</td></tr></table>"
            f'<p><a href="/v1/enterprises/{_e(row.uscc)}/assessment/explain">explain</a></p>'
        )
    port = settings.ops_services.get("registry")
    try:
        answer = httpx.get(f"http://{settings.ops_host}:{port}/v1/vehicles/{q}/timeline", timeout=3)
    except httpx.HTTPError as exc:
        return f"<p>The registry did not answer: {_e(type(exc).__name__)}.</p>"
    if answer.status_code != 200:
        return f"<p>No vehicle {_e(q)} ({answer.status_code}).</p>"
    timeline = answer.json()
    rows = "".join(
        f"<tr><td>{_e(e.get('time', ''))}</td><td>{_e(e.get('type', ''))}</td>"
        f"<td>{_e(e.get('summary', ''))}</td></tr>"
        for e in timeline.get("events", [])
    )
    return (
        f"<p>Vehicle {_e(q)}: stage <b>{_e(timeline.get('stage', ''))}</b></p>"
        f'<table id="search-result"><tr><th>time</th><th>event</th><th>what</th></tr>{rows}</table>'
    )


@router.get("/ops", response_class=HTMLResponse)
async def console(
    request: Request,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    now = clock.now()
    found = await processes(settings)
    letters = await asyncio.to_thread(_live_letters, settings, session)
    tiers = dict(
        session.execute(
            select(EnterpriseAssessment.tier, func.count()).group_by(EnterpriseAssessment.tier)
        ).all()
    )
    changes = session.execute(
        select(LedgerEntry.uscc, LedgerEntry.time, LedgerEntry.data)
        .where(LedgerEntry.type == "enterprise.status-changed")
        .order_by(LedgerEntry.seq.desc())
        .limit(15)
    ).all()
    rates = _events_per_minute(session, now)
    search = await asyncio.to_thread(_search, settings, session, q) if q else ""
    refresh = "" if q else f'<meta http-equiv="refresh" content="{REFRESH_S}">'
    tier_rows = "".join(
        f"<tr><td>{t}</td><td>{tiers.get(t, 0)}</td></tr>"
        for t in ("good", "warning", "suspension", "exit")
    )
    change_rows = "".join(
        f"<tr><td>{_e(at)}</td><td>{_e(uscc)}</td><td>{_e(d.get('from'))} → {_e(d.get('to'))}</td>"
        f"<td>{_e(d.get('actor'))}</td><td>{_e(d.get('reason'))}</td>"
        f"<td class=muted>{_e(d.get('cause') or '')}</td></tr>"
        for uscc, at, d in ((u, t, json.loads(raw)) for u, t, raw in changes)
    )
    rate_rows = "".join(
        f"<tr><td>{_e(t)}</td><td>{_sparkline(v)}</td><td>{sum(v)}</td></tr>"
        for t, v in rates.items()
    )
    letter_rows = "".join(
        f"<tr><td>{_e(x.original_topic)}</td><td>{_e(x.consumer)}</td>"
        f"<td>{x.partition}/{x.offset}</td>"
        f"<td>{_e(x.failed_at)}</td><td>{_e(x.error[:160])}</td><td>"
        f'<form class="inline" method="post" action="/ops/dlq/redrive">'
        f'<input type="hidden" name="topic" value="{_e(x.topic)}">'
        f'<input type="hidden" name="partition" value="{x.partition}">'
        f'<input type="hidden" name="offset" value="{x.offset}">'
        f'<input type="password" name="token" placeholder="admin token" required>'
        f"<button>redrive</button></form></td></tr>"
        for x in letters
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">{refresh}
<title>ucx ops</title><style>{CSS}</style></head><body>
<h1>ucx ops console <span class="muted">{now:%Y-%m-%d %H:%M:%S} UTC</span></h1>
<form method="get" action="/ops"><input name="q" placeholder="VIN or USCC" value="{_e(q or "")}"
 size="24"> <button>search</button></form>{search}
<h2>Processes</h2><table id="processes"><tr><th>service</th><th>process</th><th>state</th>
<th>lag / backlog</th><th>detail</th></tr>{_process_rows(found)}</table>
<h2>Events per minute, last 15 minutes (as scoring saw them)</h2>
<table id="rates">{rate_rows or '<tr><td class="muted">no events yet</td></tr>'}</table>
<h2>Dead letters ({len(letters)})</h2><table id="dlq"><tr><th>topic</th><th>consumer</th>
<th>partition/offset</th>
<th>failed at</th><th>error</th><th></th></tr>{letter_rows}</table>
<h2>Enterprises by tier</h2><table id="tiers">{tier_rows}</table>
<h2>Recent status changes</h2><table id="changes"><tr><th>at</th><th>USCC</th><th>change</th>
<th>actor</th><th>reason</th><th>cause</th></tr>{change_rows}</table>
</body></html>"""
    return HTMLResponse(page)


def _live_letters(settings: Settings, session: Session) -> list[DeadLetter]:
    try:
        letters = dead_letters(settings)
    except Exception:  # noqa: BLE001 - a broker outage must not take the console down
        return []
    done = {(r.topic, r.partition, r.offset) for r in session.execute(select(DlqRedrive)).scalars()}
    return [x for x in letters if (x.topic, x.partition, x.offset) not in done]


@router.post("/ops/dlq/redrive")
def redrive_letter(
    request: Request,
    session: SessionDep,
    topic: Annotated[str, Form(max_length=200)],
    partition: Annotated[int, Form(ge=0)],
    offset: Annotated[int, Form(ge=0)],
    token: Annotated[str, Form(max_length=500)],
) -> Any:
    settings: Settings = request.app.state.settings
    if not settings.admin_token or not hmac.compare_digest(token, settings.admin_token):
        return HTMLResponse("<p>Not allowed: the admin token is required.</p>", status_code=401)
    letter = next(
        (
            x
            for x in dead_letters(settings)
            if (x.topic, x.partition, x.offset) == (topic, partition, offset)
        ),
        None,
    )
    if letter is None:
        return HTMLResponse("<p>No such dead letter.</p>", status_code=404)
    with session.begin():
        already = session.get(DlqRedrive, (topic, partition, offset))
        if already is None:
            redrive(settings, letter)
            session.execute(
                insert(DlqRedrive).values(
                    topic=topic, partition=partition, offset=offset, redriven_at=clock.now()
                )
            )
    return RedirectResponse("/ops", status_code=303)
