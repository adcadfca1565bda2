from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit import tables
from servicekit.db import UtcDateTime, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


tables.define(Base.metadata)


class LedgerEntry(Base):
    """Append-only: every event scoring has seen, once, hash-chained per enterprise."""

    __tablename__ = "ledger"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    type: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str | None] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EnterpriseAssessment(Base):
    """The running state (tally) and the current assessment of one enterprise."""

    __tablename__ = "assessments"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    tally: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    tier: Mapped[str] = mapped_column(String(20), index=True)
    emitted_score: Mapped[float | None] = mapped_column(Float)
    emitted_tier: Mapped[str | None] = mapped_column(String(20))
    policy_version: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
