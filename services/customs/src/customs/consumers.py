"""Customs' own copies of vehicles, latest inspections and enterprise status. A vehicle or
inspection that arrives late decides the declarations that were waiting for it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from contracts import events
from customs import services
from customs import subscriptions as subscriptions_service
from customs.delivery import DeliveryTimer
from customs.models import KnownVehicle, LatestInspection
from customs.settings import Settings
from servicekit import standing
from servicekit.clock import clock
from servicekit.consumer import Subscription, Timer
from servicekit.settings import BaseServiceSettings


def _decide_waiting(session: Session, settings: Settings, vin: str) -> None:
    for declaration in services.pending_for_vin(session, vin):
        services.decide_if_possible(session, settings, declaration, force=False)


def _vehicle_registered(settings: Settings) -> Callable[[Session, events.VehicleRegistered], None]:
    def handle(session: Session, data: events.VehicleRegistered) -> None:
        if session.get(KnownVehicle, data.vin) is None:
            session.add(
                KnownVehicle(
                    vin=data.vin,
                    enterprise_uscc=data.enterprise_uscc,
                    first_registration_date=data.first_registration_date,
                    exported=False,
                )
            )
            session.flush()
        _decide_waiting(session, settings, data.vin)

    return handle


def _vehicle_inspected(settings: Settings) -> Callable[[Session, events.VehicleInspected], None]:
    def handle(session: Session, data: events.VehicleInspected) -> None:
        latest = session.get(LatestInspection, data.vin)
        if latest is None:
            latest = LatestInspection(vin=data.vin)
            session.add(latest)
        elif latest.inspected_at > data.inspected_at:
            return  # an older inspection arriving late changes nothing
        latest.inspection_id = data.inspection_id
        latest.verdict = data.verdict
        latest.certificate_no = data.certificate_no
        latest.valid_until = data.valid_until
        latest.inspected_at = data.inspected_at
        latest.revoked = False
        session.flush()
        _decide_waiting(session, settings, data.vin)

    return handle


def _standing_changed(
    settings: Settings,
) -> Callable[[Session, events.EnterpriseStatusChanged], None]:
    def handle(session: Session, data: events.EnterpriseStatusChanged) -> None:
        """A known bad standing makes the enterprise's waiting declarations certain."""
        standing.apply(session, data)
        for declaration in services.pending_of_enterprise(session, data.enterprise_uscc):
            services.decide_if_possible(session, settings, declaration, force=False)

    return handle


def certificate_revoked(session: Session, data: events.CertificateRevoked) -> None:
    """A revoked certificate fails the inspection gate from now on."""
    latest = session.get(LatestInspection, data.vin)
    if latest is not None and latest.certificate_no == data.certificate_no:
        latest.revoked = True


OUTBOUND: tuple[type[events.EventData], ...] = (
    events.VehicleDeclared,
    events.VehicleExported,
    events.DepartureRefused,
    events.VehicleInspected,
    events.EnterpriseStatusChanged,
)
"""The events partners may receive as webhooks."""


def subscriptions(settings: BaseServiceSettings) -> list[Subscription]:
    assert isinstance(settings, Settings)
    outbound = Subscription("customs-outbound-webhooks")
    for model in OUTBOUND:
        outbound = outbound.on_envelope(model, subscriptions_service.enqueue)
    return [
        outbound,
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
