from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit import tables
from servicekit.db import UtcDateTime, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


tables.define(Base.metadata)


class Enterprise(Base):
    __tablename__ = "enterprises"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(6), index=True)
    address: Mapped[str] = mapped_column(String(500))
    appraiser_count: Mapped[int] = mapped_column(Integer)
    contact: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    admission_valid_until: Mapped[date | None] = mapped_column(Date)
    recommended: Mapped[str | None] = mapped_column(String(20), index=True)
    """The latest recommendation of an assessment the registry did not apply (refused by the
    status machine, or awaiting the regulator) since the last status change."""
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class StatusChange(Base):
    """The enterprise's history, in order: every status change (outcome ``applied``, each
    emitted as its ``event_id``) and every recommendation the registry did not apply
    (``refused`` or ``awaiting_regulator``: no event, from_status = to_status)."""

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    outcome: Mapped[str] = mapped_column(String(20), default="applied")
    policy_version: Mapped[str | None] = mapped_column(String(20))
    """The registry policy the decision was taken under (None: before policies had versions)."""
    official_id: Mapped[str | None] = mapped_column(String(200))
    """The official who decided (actor ``official``); None for the policy and the system."""
    official_name: Mapped[str | None] = mapped_column(String(200))


class Vehicle(Base):
    __tablename__ = "vehicles"

    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    enterprise_uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    make: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    model_year: Mapped[int] = mapped_column(Integer)
    first_registration_date: Mapped[date] = mapped_column(Date)
    registration_certificate_no: Mapped[str] = mapped_column(String(64))
    engine_no: Mapped[str] = mapped_column(String(64))
    mileage_km: Mapped[int] = mapped_column(Integer)
    fuel_type: Mapped[str] = mapped_column(String(20))
    hs_code: Mapped[str] = mapped_column(String(10))
    destination_country: Mapped[str] = mapped_column(String(2))
    transfer_endorsed_on: Mapped[date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(20), index=True)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)


class TimelineEntry(Base):
    """One row per event about a vehicle, from any service, for ``/timeline``."""

    __tablename__ = "timeline"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), index=True)
    type: Mapped[str] = mapped_column(String(60))
    source: Mapped[str] = mapped_column(String(100))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    summary: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(30))


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    vin: Mapped[str | None] = mapped_column(String(17))
    country: Mapped[str] = mapped_column(String(2))
    category: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolution: Mapped[str | None] = mapped_column(Text)


class PrincipalRow(Base):
    """An official who acts in ucx (servicekit.roles): the registry is their record."""

    __tablename__ = "principals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    province: Mapped[str | None] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PrincipalToken(Base):
    """A principal's API token, kept as its SHA-256 digest only."""

    __tablename__ = "principal_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
