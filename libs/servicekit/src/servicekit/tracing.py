"""The W3C trace id of the current request or event, carried from HTTP into every event."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar

import structlog

from contracts.envelope import new_trace_id, trace_id_of

_trace_id: ContextVar[str | None] = ContextVar("trace_id", default=None)


def current_trace_id() -> str | None:
    return _trace_id.get()


def begin(traceparent: str | None) -> str:
    """Continue the caller's trace (or start one) for the current context."""
    trace_id = trace_id_of(traceparent) or new_trace_id()
    _trace_id.set(trace_id)
    structlog.contextvars.bind_contextvars(trace_id=trace_id)
    return trace_id


def trace_ids(traceparents: Iterable[str | None], limit: int = 50) -> list[str]:
    """The distinct trace ids among these ``traceparent`` values, in order (for one log line
    per batch that a request's trace id can be followed to)."""
    found = dict.fromkeys(trace_id_of(t) for t in traceparents)
    return [t for t in found if t][:limit]
