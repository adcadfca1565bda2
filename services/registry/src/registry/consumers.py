"""What the registry reads from Kafka: every vehicle event moves the vehicle's stage and
adds a line to its timeline. Each handler runs inside the consumer base's transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import CloudEvent
from registry.models import TimelineEntry, Vehicle
from servicekit.consumer import Subscription

_STAGE_ORDER = ["registered", "inspected", "inspection_failed", "declared", "rejected", "exported"]


def _summary(event: CloudEvent) -> tuple[str, str | None]:
    """One line for the timeline and the stage the vehicle reaches (None = unchanged)."""
    if event.type == events.VehicleInspected.TYPE:
        inspected = event.parse_data(events.VehicleInspected)
        if inspected.verdict == "pass":
            return f"inspection passed, certificate {inspected.certificate_no}", "inspected"
        return f"inspection failed: {', '.join(inspected.failed_items)}", "inspection_failed"
    if event.type == events.VehicleDeclared.TYPE:
        declared = event.parse_data(events.VehicleDeclared)
        if declared.outcome == "accepted":
            return f"declaration {declared.declaration_no} accepted", "declared"
        return (
            f"declaration {declared.declaration_no} rejected: {', '.join(declared.reasons)}",
            None,
        )
    exported = event.parse_data(events.VehicleExported)
    return (
        f"departed {exported.port_of_loading} on {exported.vessel_name}, "
        f"B/L {exported.bill_of_lading}",
        "exported",
    )


def record_vehicle_event(session: Session, event: CloudEvent) -> None:
    vin = event.subject or ""
    summary, stage = _summary(event)
    if session.get(TimelineEntry, event.id) is None:
        session.add(
            TimelineEntry(
                event_id=event.id,
                vin=vin,
                type=event.type,
                source=event.source,
                time=event.time,
                summary=summary,
            )
        )
    vehicle = session.get(Vehicle, vin)
    if vehicle is not None and stage is not None and vehicle.stage != "exported":
        vehicle.stage = stage


def subscriptions(_settings: object) -> list[Subscription]:
    return [
        Subscription(
            "registry-vehicle-lifecycle",
            {
                events.VehicleInspected.TYPE: record_vehicle_event,
                events.VehicleDeclared.TYPE: record_vehicle_event,
                events.VehicleExported.TYPE: record_vehicle_event,
            },
        )
    ]
