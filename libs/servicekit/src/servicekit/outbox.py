"""Write events to the outbox inside the state change's transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from contracts import envelope
from contracts.envelope import CloudEvent, new_event
from contracts.events import EventData
from servicekit import tracing
from servicekit.clock import clock
from servicekit.tables import outbox

_INSERT = insert(outbox)  # built once: the statement cache keys on it


def emit(session: Session, data: EventData, *, source: str) -> CloudEvent:
    """A new event for ``data`` in the current trace, into the outbox; returns the event.
    (The relay logs the trace ids it publishes: no log line on the request path.)"""
    event = event_for(data, source=source)
    add(session, event)
    return event


def event_for(data: EventData, *, source: str) -> CloudEvent:
    """A new event for ``data`` in the current trace (to :func:`add_all` with others)."""
    return new_event(data, source=source, trace_id=tracing.current_trace_id(), time=clock.now())


def add(session: Session, event: CloudEvent) -> None:
    session.connection().execute(_INSERT, _event_row(event, clock.now()))


def add_all(session: Session, events: Sequence[CloudEvent]) -> None:
    """Many events in one statement (a worker's batch)."""
    if events:
        now = clock.now()
        session.connection().execute(_INSERT, [_event_row(e, now) for e in events])


def add_raw(
    session: Session,
    *,
    event_id: str,
    topic: str,
    key: str,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
) -> None:
    """Any record, e.g. a dead letter that keeps the original bytes."""
    session.connection().execute(_INSERT, _row(event_id, topic, key, value, headers, clock.now()))


def _event_row(event: CloudEvent, created_at: datetime) -> dict[str, object]:
    return _row(
        event.id,
        event.topic,
        event.enterpriseid,
        envelope.encode(event),
        envelope.headers(event),
        created_at,
    )


def _row(
    event_id: str,
    topic: str,
    key: str,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
    created_at: datetime,
) -> dict[str, object]:
    return {
        "event_id": event_id,
        "topic": topic,
        "key": key,
        "value": value,
        "headers": json.dumps([[k, v.decode("utf-8", "replace")] for k, v in headers]),
        "created_at": created_at,
    }
