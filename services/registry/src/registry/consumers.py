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


def inspected(session: Session, data: events.VehicleInspected, event: CloudEvent) -> None:
    if data.verdict == "pass":
        summary = f"inspection passed, certificate {data.certificate_no}"
    else:
        summary = f"inspection failed: {', '.join(data.failed_items + data.fraud_signals)}"
    services.record_vehicle_event(
        session, event, summary, domain.stage_of(event.type, data.verdict)
    )


def declared(session: Session, data: events.VehicleDeclared, event: CloudEvent) -> None:
    summary = f"declaration {data.declaration_no} {data.outcome}"
    if data.outcome != "accepted":
        summary += f": {', '.join(data.reasons)}"
    services.record_vehicle_event(
        session, event, summary, domain.stage_of(event.type, data.outcome)
    )


def exported(session: Session, data: events.VehicleExported, event: CloudEvent) -> None:
    summary = f"departed {data.port_of_loading} on {data.vessel_name}, B/L {data.bill_of_lading}"
    services.record_vehicle_event(session, event, summary, domain.stage_of(event.type, None))


def subscriptions(settings: BaseServiceSettings) -> list[Subscription]:
    """The timeline (one line per vehicle event, and the stage it leads to), and the policy's
    decisions on assessments."""
    assert isinstance(settings, Settings)
    loaded = policy.load(settings.policy_path)

    def apply_assessment(
        session: Session, data: events.EnterpriseAssessed, event: CloudEvent
    ) -> None:
        services.apply_assessment(session, loaded, data, event.id)

    return [
        Subscription("registry-vehicle-lifecycle")
        .on_envelope(events.VehicleInspected, inspected)
        .on_envelope(events.VehicleDeclared, declared)
        .on_envelope(events.VehicleExported, exported),
        Subscription("registry-assessments").on_envelope(
            events.EnterpriseAssessed, apply_assessment
        ),
    ]


def timers(settings: BaseServiceSettings) -> list[Timer]:
    assert isinstance(settings, Settings)

    def expire(session: Session) -> None:
        services.expire_overdue(session, clock.now())

    return [Timer("registry-admission-expiry", settings.expiry_sweep_interval_s, expire)]
