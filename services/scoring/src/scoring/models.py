from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit import tables
from servicekit.db import UtcDateTime, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


tables.define(Base.metadata)


class LedgerEntry(Base):
    """Append-only: every event scoring has seen, once, hash-chained per enterprise, and the
    evaluations only the clock caused (type ``scoring.clock-tick``)."""

    __tablename__ = "ledger"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    type: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str | None] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    data: Mapped[str] = mapped_column(Text)
    """The event's data as canonical JSON (sorted keys): exactly the bytes the hash covers."""
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """The moment the entry was folded: the assessment's ``now`` for it, in replay too."""


class EnterpriseAssessment(Base):
    """The running state of one enterprise and its current assessment."""

    __tablename__ = "assessments"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    province: Mapped[str] = mapped_column(String(6), index=True)
    state: Mapped[str] = mapped_column(Text)
    """:class:`scoring.domain.State` as JSON."""
    last_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float, index=True)
    tier: Mapped[str] = mapped_column(String(20), index=True)
    exports: Mapped[int] = mapped_column(Integer)
    """Vehicles exported in the window: the volume that percentiles compare within."""
    volume_band: Mapped[int] = mapped_column(Integer, index=True)
    window_end: Mapped[int] = mapped_column(Integer, index=True)
    """Day ordinal the state's window ends on: the daily timer looks for old ones."""
    events_counted: Mapped[int] = mapped_column(Integer)
    emitted_score: Mapped[float | None] = mapped_column(Float)
    emitted_tier: Mapped[str | None] = mapped_column(String(20))
    policy_version: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AssessmentChange(Base):
    """Every emitted ``enterprise.assessed``: the assessment history."""

    __tablename__ = "assessment_changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    score: Mapped[float] = mapped_column(Float)
    tier: Mapped[str] = mapped_column(String(20))
    previous_tier: Mapped[str | None] = mapped_column(String(20))
    recommended_action: Mapped[str] = mapped_column(String(20))
    components: Mapped[dict[str, Any]] = mapped_column(JSON)
    exit_rules: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    causes: Mapped[list[str]] = mapped_column(JSON)
    policy_version: Mapped[str] = mapped_column(String(20))
    assessed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ExportedVin(Base):
    """VINs each enterprise exported: 'the same VIN exported twice' without keeping every VIN
    in the running state."""

    __tablename__ = "exported_vins"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))


class RescoreJob(Base):
    __tablename__ = "rescore_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    uscc: Mapped[str | None] = mapped_column(String(18))
    status: Mapped[str] = mapped_column(String(20))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    changed: Mapped[int] = mapped_column(Integer)
    policy_version: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    runner: Mapped[str | None] = mapped_column(String(80))
    """Who runs the job (host:pid:nonce) while ``leased_until`` is ahead; nobody if null."""
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    """Past this moment (or if null) a running job is anyone's: its runner died or stopped."""


class RescoreChunk(Base):
    """One part of a job's plan, fixed when the job starts: its enterprises, and whether they
    were stored. ``done`` turns true in the transaction that stores them, so a job resumed
    after a crash runs exactly the chunks that are not: none twice, none skipped."""

    __tablename__ = "rescore_chunks"

    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("rescore_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    usccs: Mapped[list[str]] = mapped_column(JSON)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    changed: Mapped[int | None] = mapped_column(Integer)


class DlqRedrive(Base):
    """Dead letters the ops console has published again (Kafka keeps the .dlq record)."""

    __tablename__ = "dlq_redrives"

    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    redriven_at: Mapped[datetime] = mapped_column(UtcDateTime())
