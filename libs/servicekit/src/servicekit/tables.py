"""Tables every service has: outbox, inbox (consumer dedupe) and idempotency keys.

Each service calls ``define(metadata)`` once so the tables land in its own Alembic history.
Code that reads or writes them uses the lightweight ``sqlalchemy.table`` twins below, which
need no metadata, so servicekit works with any service's database.
"""

from __future__ import annotations

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
    column,
    table,
    text,
)

from servicekit.db import UtcDateTime

_BigId = BigInteger().with_variant(Integer, "sqlite")


def define(metadata: MetaData) -> None:
    Table(
        "outbox",
        metadata,
        Column("id", _BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(64), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False, server_default="[]"),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("sent_at", UtcDateTime(), nullable=True),
        Index(
            "ix_outbox_unsent",
            "id",
            sqlite_where=text("sent_at IS NULL"),
            postgresql_where=text("sent_at IS NULL"),
        ),
        Index("ix_outbox_created_at", "created_at"),
    )
    Table(
        "inbox",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("topic", String(200), nullable=False),
        Column("outcome", String(20), nullable=False),
        Column("processed_at", UtcDateTime(), nullable=False),
    )
    Table(
        "idempotency_keys",
        metadata,
        Column("scope", String(128), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=True),
        Column("content_type", String(100), nullable=True),
        Column("body", LargeBinary, nullable=True),
        Column("created_at", UtcDateTime(), nullable=False),
    )


outbox = table(
    "outbox",
    column("id"),
    column("event_id"),
    column("topic"),
    column("key"),
    column("value"),
    column("headers"),
    column("created_at", UtcDateTime()),
    column("sent_at", UtcDateTime()),
)
inbox = table(
    "inbox", column("event_id"), column("topic"), column("outcome"), column("processed_at")
)
idempotency_keys = table(
    "idempotency_keys",
    column("scope"),
    column("key"),
    column("request_hash"),
    column("status_code"),
    column("content_type"),
    column("body"),
    column("created_at", UtcDateTime()),
)
