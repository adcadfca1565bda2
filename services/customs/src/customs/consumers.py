"""Customs' own copies of vehicles, latest inspections and enterprise status, written with
Core like every other write of customs' data path (the gates read them with Core in the
same transaction). A vehicle or inspection that arrives late decides the declarations that
were waiting for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from contracts import events
from customs import outbound, services
from customs import subscriptions as subscriptions_service
from customs.delivery import DeliveryTimer
from customs.models import KnownVehicle, LatestInspection
from customs.settings import Settings
from servicekit import standing
from servicekit.clock import clock
from servicekit.consumer import Subscription, Timer
from servicekit.settings import BaseServiceSettings

_VEHICLES = cast(Table, KnownVehicle.__table__)
_INSPECTIONS = cast(Table, LatestInspection.__table__)
_KNOWN = select(_VEHICLES.c.vin).where(_VEHICLES.c.vin == bindparam("vin"))
_KNOW = insert(_VEHICLES)
_LATEST_AT = select(_INSPECTIONS.c.inspected_at).where(_INSPECTIONS.c.vin == bindparam("vin"))
_NEW_LATEST = insert(_INSPECTIONS)
_NEWER_LATEST = update(_INSPECTIONS).where(_INSPECTIONS.c.vin == bindparam("the_vin"))
_REVOKE = (
    update(_INSPECTIONS)
    .where(
        _INSPECTIONS.c.vin == bindparam("the_vin"),
        _INSPECTIONS.c.certificate_no == bindparam("the_certificate"),
    )
    .values(revoked=True)
)


def _vehicle_registered(settings: Settings) -> Callable[[Session, events.VehicleRegistered], None]:
    def handle(session: Session, data: events.VehicleRegistered) -> None:
        connection = session.connection()
        if connection.execute(_KNOWN, {"vin": data.vin}).first() is None:
            connection.execute(
                _KNOW,
                {
                    "vin": data.vin,
                    "enterprise_uscc": data.enterprise_uscc,
                    "first_registration_date": data.first_registration_date,
                    "exported": False,
                },
            )
        services.decide_pending_of_vin(session, settings, data.vin)

    return handle


def _vehicle_inspected(settings: Settings) -> Callable[[Session, events.VehicleInspected], None]:
    def handle(session: Session, data: events.VehicleInspected) -> None:
        connection = session.connection()
        latest_at = connection.execute(_LATEST_AT, {"vin": data.vin}).scalar_one_or_none()
        if latest_at is not None and latest_at > data.inspected_at:
            return  # an older inspection arriving late changes nothing
        latest = {
            "inspection_id": data.inspection_id,
            "verdict": data.verdict,
            "certificate_no": data.certificate_no,
            "valid_until": data.valid_until,
            "inspected_at": data.inspected_at,
            "revoked": False,
        }
        if latest_at is None:
            connection.execute(_NEW_LATEST, {"vin": data.vin, **latest})
        else:
            connection.execute(_NEWER_LATEST, {"the_vin": data.vin, **latest})
        services.decide_pending_of_vin(session, settings, data.vin)

    return handle


def _standing_changed(
    settings: Settings,
) -> Callable[[Session, events.EnterpriseStatusChanged], None]:
    def handle(session: Session, data: events.EnterpriseStatusChanged) -> None:
        """A known bad standing makes the enterprise's waiting declarations certain."""
        standing.apply(session, data)
        services.decide_pending_of_enterprise(session, settings, data.enterprise_uscc)

    return handle


def certificate_revoked(session: Session, data: events.CertificateRevoked) -> None:
    """A revoked certificate fails the inspection gate from now on."""
    session.connection().execute(
        _REVOKE, {"the_vin": data.vin, "the_certificate": data.certificate_no}
    )


def subscriptions(settings: BaseServiceSettings) -> list[Subscription]:
    assert isinstance(settings, Settings)
    outbound_webhooks = Subscription("customs-outbound-webhooks")
    for model in outbound.OUTBOUND:
        outbound_webhooks = outbound_webhooks.on_envelope(model, subscriptions_service.enqueue)
    return [
        outbound_webhooks,
        Subscription("customs-projections")
        .on(events.VehicleRegistered, _vehicle_registered(settings))
        .on(events.VehicleInspected, _vehicle_inspected(settings))
        .on(events.CertificateRevoked, certificate_revoked)
        .on(events.EnterpriseStatusChanged, _standing_changed(settings)),
    ]


def timers(settings: BaseServiceSettings) -> list[Timer]:
    """The overdue declarations' sweep, and webhook delivery (on the worker's engine, its
    client closed when the worker stops)."""
    assert isinstance(settings, Settings)
    delivery = DeliveryTimer(settings)

    def sweep(session: Session) -> None:
        services.decide_overdue(session, settings, clock.now())

    return [
        Timer("customs-pending-timeout", settings.pending_sweep_interval_s, sweep),
        Timer(
            "customs-webhook-delivery",
            settings.delivery_interval_s,
            arun=delivery.tick,
            close=delivery.close,
        ),
    ]
