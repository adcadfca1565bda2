"""The inspection service's own copies of registered vehicles and enterprise status."""

from __future__ import annotations

from sqlalchemy.orm import Session

from contracts import events
from inspection.models import KnownVehicle
from servicekit import standing
from servicekit.consumer import Subscription


def vehicle_registered(session: Session, data: events.VehicleRegistered) -> None:
    if session.get(KnownVehicle, data.vin) is None:
        session.add(
            KnownVehicle(
                vin=data.vin,
                enterprise_uscc=data.enterprise_uscc,
                make=data.make,
                model=data.model,
                model_year=data.model_year,
                mileage_km=data.mileage_km,
                registered_at=data.registered_at,
                transfer_endorsed_on=data.transfer_endorsed_on,
            )
        )


def subscriptions(_settings: object) -> list[Subscription]:
    return [
        Subscription("inspection-projections")
        .on(events.VehicleRegistered, vehicle_registered)
        .on(events.EnterpriseStatusChanged, standing.apply)
    ]
