"""A service's copy of every enterprise's status, kept from ``enterprise.status-changed``.

Inspection and customs enforce standing at their gates; the registry owns it.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    bindparam,
    column,
    insert,
    select,
    table,
    update,
)
from sqlalchemy.orm import Session

from contracts import events
from servicekit.db import UtcDateTime

_standing = table(
    "enterprise_standing",
    column("uscc", String()),
    column("status", String()),
    column("changed_at", UtcDateTime()),
)


def define(metadata: MetaData) -> None:
    Table(
        "enterprise_standing",
        metadata,
        Column("uscc", String(18), primary_key=True),
        Column("status", String(20), nullable=False),
        Column("changed_at", UtcDateTime(), nullable=False),
    )


_STATUS = select(_standing.c.status).where(_standing.c.uscc == bindparam("uscc"))
"""Built once, the value a bind parameter: on hot paths SQLAlchemy then finds the compiled
statement in its cache without building a cache key per call."""


def status_of(session: Session, uscc: str) -> str | None:
    return session.connection().execute(_STATUS, {"uscc": uscc}).scalar_one_or_none()


def in_good_standing(status: str | None, *, unknown_passes: bool) -> bool:
    """``events.GOOD_STANDING``, with what an unknown standing (no status event received yet)
    means at this gate said by the caller: a gate that lets it through does so by name."""
    return unknown_passes if status is None else status in events.GOOD_STANDING


def apply(session: Session, data: events.EnterpriseStatusChanged) -> None:
    """Consumer handler; a late, older change does not roll the status back."""
    current = session.execute(
        select(_standing.c.changed_at).where(_standing.c.uscc == data.enterprise_uscc)
    ).scalar_one_or_none()
    if current is None:
        session.execute(
            insert(_standing).values(
                uscc=data.enterprise_uscc, status=data.to_status, changed_at=data.changed_at
            )
        )
    elif current <= data.changed_at:
        session.execute(
            update(_standing)
            .where(_standing.c.uscc == data.enterprise_uscc)
            .values(status=data.to_status, changed_at=data.changed_at)
        )
