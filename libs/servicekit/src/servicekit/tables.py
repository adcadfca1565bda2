"""Tables every service has: outbox, inbox (consumer dedupe), idempotency keys and the audit
log.

They are defined once, here. Each service calls ``define(metadata)`` once so copies of them
land in its own Alembic history; servicekit's code reads and writes these definitions, which
name only the table and its columns, so it works with any service's database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeEngine

from servicekit.db import UtcDateTime

_BigId = BigInteger().with_variant(Integer, "sqlite")
_OWN = MetaData()


def _required(name: str, type_: TypeEngine[Any], **kw: Any) -> Column[Any]:
    """A NOT NULL column (the tables' columns are, unless they say ``Column(...)``)."""
    return Column(name, type_, nullable=False, **kw)


outbox = Table(
    "outbox",
    _OWN,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    _required("event_id", String(64), unique=True),
    _required("topic", String(200)),
    _required("key", String(64)),
    _required("value", LargeBinary()),
    _required("headers", Text(), server_default="[]"),
    _required("created_at", UtcDateTime()),
    Column("sent_at", UtcDateTime()),
    Index(
        "ix_outbox_unsent",
        "id",
        sqlite_where=text("sent_at IS NULL"),
        postgresql_where=text("sent_at IS NULL"),
    ),
    Index("ix_outbox_created_at", "created_at"),
)
inbox = Table(
    "inbox",
    _OWN,
    Column("event_id", String(64), primary_key=True),
    _required("topic", String(200)),
    _required("outcome", String(20)),
    _required("processed_at", UtcDateTime()),
)
idempotency_keys = Table(
    "idempotency_keys",
    _OWN,
    Column("scope", String(128), primary_key=True),
    Column("key", String(255), primary_key=True),
    _required("request_hash", String(64)),
    Column("status_code", Integer),
    Column("content_type", String(100)),
    Column("body", LargeBinary),
    _required("created_at", UtcDateTime()),
)
audit_log = Table(
    "audit_log",
    _OWN,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    _required("at", UtcDateTime()),
    _required("actor_id", String(200)),
    _required("actor_name", String(200)),
    _required("actor_role", String(20)),
    _required("operation", String(80)),
    _required("method", String(10)),
    _required("target", String(500)),
    _required("outcome", String(20)),
    Column("status", Integer),
    Column("trace_id", String(32)),
    Index("ix_audit_log_actor", "actor_id", "id"),
    Index("ix_audit_log_at", "at"),
)
"""Who did what (servicekit.audit): written with the change it describes."""


def define(metadata: MetaData) -> None:
    """Copies of servicekit's tables in a service's ``metadata`` (its migrations' target)."""
    for table in _OWN.sorted_tables:
        table.to_metadata(metadata)
