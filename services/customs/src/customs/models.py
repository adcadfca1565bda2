from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit import standing, tables
from servicekit.db import UtcDateTime, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


tables.define(Base.metadata)
standing.define(Base.metadata)


class Broker(Base):
    __tablename__ = "brokers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    customs_code: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BrokerEnterprise(Base):
    __tablename__ = "broker_enterprises"

    broker_id: Mapped[str] = mapped_column(ForeignKey("brokers.id"), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)


class KnownVehicle(Base):
    """Our copy of ``vehicle.registered``, plus whether it has left the country."""

    __tablename__ = "known_vehicles"

    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    enterprise_uscc: Mapped[str] = mapped_column(String(18), index=True)
    first_registration_date: Mapped[date] = mapped_column(Date)
    exported: Mapped[bool] = mapped_column(Boolean, default=False)


class LatestInspection(Base):
    """The latest ``vehicle.inspected`` per VIN (by inspection time)."""

    __tablename__ = "latest_inspections"

    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    inspection_id: Mapped[str] = mapped_column(String(36))
    verdict: Mapped[str] = mapped_column(String(10))
    certificate_no: Mapped[str | None] = mapped_column(String(40))
    valid_until: Mapped[date | None] = mapped_column(Date)
    inspected_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


_OPEN = text("status IN ('pending', 'accepted', 'released')")  # domain.OPEN_STATUSES


class Declaration(Base):
    """A lodged declaration. At most one per VIN is open (pending, accepted or released): the
    partial unique index holds that under concurrent lodgings too. A bill of lading carries
    many vehicles, each VIN once."""

    __tablename__ = "declarations"
    __table_args__ = (
        Index(
            "uq_declarations_open_vin",
            "vin",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        UniqueConstraint("bill_of_lading", "vin", name="uq_declarations_bill_of_lading_vin"),
    )

    declaration_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), index=True)
    enterprise_uscc: Mapped[str] = mapped_column(String(18), index=True)
    broker_id: Mapped[str] = mapped_column(ForeignKey("brokers.id"))
    status: Mapped[str] = mapped_column(String(20), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason_details: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    export_licence_no: Mapped[str | None] = mapped_column(String(64))
    certificate_no: Mapped[str | None] = mapped_column(String(64))
    port_of_loading: Mapped[str] = mapped_column(String(5))
    destination_country: Mapped[str] = mapped_column(String(2))
    after_sales_letter_ref: Mapped[str | None] = mapped_column(String(64))
    declared_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """The broker's claim, kept; bounded by the policy's claim ages, never judged."""
    lodged_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """When customs received the lodging (the server's clock): the gates' moment."""
    policy_version: Mapped[str | None] = mapped_column(String(20))
    """The customs policy the decision was made by (None while pending)."""
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    bill_of_lading: Mapped[str | None] = mapped_column(String(64))
    vessel_name: Mapped[str | None] = mapped_column(String(200))
    vessel_imo: Mapped[str | None] = mapped_column(String(10))
    departed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SigningSecret(Base):
    """A signing secret, encrypted at rest (``vault``): a broker's, that its inbound webhooks
    are verified with, or a subscription's, that outbound deliveries are signed with.
    Rotation gives the old ones an expiry. ``OWNER`` names the owner's column."""

    __abstract__ = True
    OWNER: ClassVar[str]

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BrokerSecret(SigningSecret):
    __tablename__ = "broker_secrets"
    OWNER = "broker_id"

    broker_id: Mapped[str] = mapped_column(ForeignKey("brokers.id"), index=True)


class RefusedDeparture(Base):
    """A release or departure customs refused: no accepted and released declaration, already
    exported, or a gate re-checked at the step failed (standing, certificate)."""

    __tablename__ = "refused_departures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    declaration_no: Mapped[str] = mapped_column(String(64), index=True)
    vin: Mapped[str] = mapped_column(String(17))
    enterprise_uscc: Mapped[str] = mapped_column(String(18))
    reason: Mapped[str] = mapped_column(String(40))
    """The first of ``reasons``."""
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    step: Mapped[str] = mapped_column(String(10), default="departure")  # release | departure
    refused_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Subscription(Base):
    """An outbound webhook endpoint."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    enterprises: Mapped[list[str] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SubscriptionSecret(SigningSecret):
    __tablename__ = "subscription_secrets"
    OWNER = "subscription_id"

    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), index=True)


class Delivery(Base):
    """One message to one endpoint; ``id`` is the stable ``webhook-id`` across attempts."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("subscription_id", "event_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    latency_ms: Mapped[float] = mapped_column(Float)
