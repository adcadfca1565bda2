"""What the registry reads from Kafka: vehicle events build each vehicle's timeline and
stage; assessments drive automatic status decisions. Handlers run inside the consumer base's
transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import CloudEvent
from registry import domain, policy, services
from registry.settings import Settings
from servicekit.clock import clock
from servicekit.consumer import Subscription, Timer
from servicekit.settings import BaseServiceSettings


def _describe(event: CloudEvent) -> tuple[str, str]:
    """One line for the timeline, and the stage the event leads to."""
    if event.type == events.VehicleInspected.TYPE:
        inspected = event.parse_data(events.VehicleInspected)
        stage = domain.stage_of(event.type, inspected.verdict)
        if inspected.verdict == "pass":
            return f"inspection passed, certificate {inspected.certificate_no}", stage
        failed = ", ".join(inspected.failed_items + inspected.fraud_signals)
        return f"inspection failed: {failed}", stage
    if event.type == events.VehicleDeclared.TYPE:
        declared = event.parse_data(events.VehicleDeclared)
        stage = domain.stage_of(event.type, declared.outcome)
        if declared.outcome == "accepted":
            return f"declaration {declared.declaration_no} accepted", stage
        return (
            f"declaration {declared.declaration_no} rejected: {', '.join(declared.reasons)}",
            stage,
        )
    exported = event.parse_data(events.VehicleExported)
    return (
        f"departed {exported.port_of_loading} on {exported.vessel_name}, "
        f"B/L {exported.bill_of_lading}",
        domain.stage_of(event.type, None),
    )


def record_vehicle_event(session: Session, event: CloudEvent) -> None:
    summary, stage = _describe(event)
    services.record_vehicle_event(session, event, summary, stage)


def subscriptions(settings: BaseServiceSettings) -> list[Subscription]:
    assert isinstance(settings, Settings)
    loaded = policy.load(settings.policy_path)

    def apply_assessment(session: Session, event: CloudEvent) -> None:
        services.apply_assessment(session, loaded, event)

    return [
        Subscription(
            "registry-vehicle-lifecycle",
            {
                events.VehicleInspected.TYPE: record_vehicle_event,
                events.VehicleDeclared.TYPE: record_vehicle_event,
                events.VehicleExported.TYPE: record_vehicle_event,
            },
        ),
        Subscription("registry-assessments", {events.EnterpriseAssessed.TYPE: apply_assessment}),
    ]


def timers(settings: BaseServiceSettings) -> list[Timer]:
    assert isinstance(settings, Settings)

    def expire(session: Session) -> None:
        services.expire_overdue(session, clock.now())

    return [Timer("registry-admission-expiry", settings.expiry_sweep_interval_s, expire)]
