"""The audit trail: who did what, when, to what, with what outcome, under which trace.

A write by an official is recorded in the same transaction as its change: the official's
dependency (``servicekit.officials``) puts the act on the request, and the first commit of
the request's effect session (``watch``) writes the row before it commits
(``before_commit``). An audit row without its change, or a change
without its row, cannot exist. A denied attempt (403) is recorded on its own, without the
request's body."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session

from servicekit import pagination, tracing
from servicekit.clock import clock
from servicekit.roles import Principal
from servicekit.tables import audit_log


@dataclass
class Act:
    """One request's official act, written at most once."""

    principal: Principal
    operation: str
    method: str
    target: str
    write: bool
    written: bool = field(default=False)

    def row(self, outcome: str, status: int | None) -> dict[str, Any]:
        return {
            "at": clock.now(),
            "actor_id": self.principal.id,
            "actor_name": self.principal.name,
            "actor_role": self.principal.role,
            "operation": self.operation,
            "method": self.method,
            "target": self.target,
            "outcome": outcome,
            "status": status,
            "trace_id": tracing.current_trace_id(),
        }


ActOf = Callable[[], "Act | None"]


def watch(session: Session, act_of: ActOf) -> Session:
    """Marks a session that carries a request's effect: its first commit records the act
    ``act_of()`` names at that moment (sessions not marked, e.g. an idempotency answer's,
    never do). ``act_of`` is asked at commit time: the official's dependency may be solved
    after the session's."""
    session.info["audit_act_of"] = act_of
    return session


@event.listens_for(Session, "before_commit")
def _record_with_the_change(session: Session) -> None:
    act_of: ActOf | None = session.info.get("audit_act_of")
    act = act_of() if act_of is not None else None
    if act is None or not act.write or act.written:
        return
    act.written = True
    session.execute(insert(audit_log).values(act.row("ok", None)))


def record_denied(engine: Engine, act: Act, status: int) -> None:
    """A refused attempt, in a transaction of its own (there is no change to join)."""
    with engine.begin() as connection:
        connection.execute(insert(audit_log).values(act.row("denied", status)))


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor_id: str
    actor_name: str
    actor_role: str
    operation: str
    method: str
    target: str
    outcome: str
    status: int | None
    trace_id: str | None


def entries(
    engine: Engine,
    *,
    actor: str | None,
    target: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> pagination.Page[AuditEntry]:
    """Newest first; ``target`` matches any part of the target path."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    last = pagination.decode(cursor)
    if last is not None:
        if not last.isdigit():
            raise pagination.invalid_cursor()
        query = query.where(audit_log.c.id < int(last))
    if actor:
        query = query.where(audit_log.c.actor_id == actor)
    if target:
        query = query.where(audit_log.c.target.contains(target, autoescape=True))
    if since:
        query = query.where(audit_log.c.at >= since)
    if until:
        query = query.where(audit_log.c.at < until)
    with engine.connect() as connection:
        rows = [AuditEntry.model_validate(r._mapping) for r in connection.execute(query)]
    return pagination.Page[AuditEntry](
        items=rows, next_cursor=pagination.next_cursor([str(r.id) for r in rows], limit)
    )
