from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit import standing, tables
from servicekit.db import UtcDateTime, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


tables.define(Base.metadata)
standing.define(Base.metadata)


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    accreditation: Mapped[str] = mapped_column(String(64))
    province: Mapped[str] = mapped_column(String(6))
    accreditation_valid_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class StationKey(Base):
    """A station API key (stored as SHA-256). Rotation gives the old key an expiry."""

    __tablename__ = "station_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class KnownVehicle(Base):
    """Our copy of ``vehicle.registered``."""

    __tablename__ = "known_vehicles"

    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    enterprise_uscc: Mapped[str] = mapped_column(String(18), index=True)
    make: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    model_year: Mapped[int] = mapped_column(Integer)
    mileage_km: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    transfer_endorsed_on: Mapped[date | None] = mapped_column(Date)
    """The registration certificate's "transfer pending export" endorsement: no inspection
    may be dated before it. NULL only for rows copied before this column existed (no bound
    from the endorsement then; the posting limit still holds)."""


class Inspection(Base):
    __tablename__ = "inspections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), index=True)
    enterprise_uscc: Mapped[str] = mapped_column(String(18))
    station_id: Mapped[str] = mapped_column(String(36), index=True)
    inspector: Mapped[str | None] = mapped_column(String(200))
    inspected_at: Mapped[datetime] = mapped_column(UtcDateTime())
    odometer_km: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(10))
    first_inspection: Mapped[bool] = mapped_column(Boolean)
    items: Mapped[list[dict[str, str | None]]] = mapped_column(JSON)
    failed_items: Mapped[list[str]] = mapped_column(JSON)
    remarks: Mapped[list[str]] = mapped_column(JSON)
    fraud_signals: Mapped[list[str]] = mapped_column(JSON)
    certificate_no: Mapped[str | None] = mapped_column(String(40), unique=True)
    valid_until: Mapped[date | None] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """The server's time when the report was posted (``inspected_at`` is the station's)."""
    policy_version: Mapped[str | None] = mapped_column(String(32))
    """The inspection policy the verdict was decided by; NULL for verdicts decided before
    policies were versioned files (rules then in code, validity from the posting)."""
    event_id: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(2000))
    revoked_as_forged: Mapped[bool] = mapped_column(Boolean, default=False)
