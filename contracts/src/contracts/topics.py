"""Topic names: one topic per event type, all keyed by the enterprise's USCC."""

from __future__ import annotations

PARTITIONS = 6

VEHICLE_REGISTERED = "vehicle.registered.v1"
VEHICLE_INSPECTED = "vehicle.inspected.v1"
VEHICLE_DECLARED = "vehicle.declared.v1"
VEHICLE_EXPORTED = "vehicle.exported.v1"
COMPLAINT_FILED = "enterprise.complaint-filed.v1"
COMPLAINT_RESOLVED = "enterprise.complaint-resolved.v1"
STATUS_CHANGED = "enterprise.status-changed.v1"
ASSESSED = "enterprise.assessed.v1"
CERTIFICATE_REVOKED = "vehicle.certificate-revoked.v1"
DEPARTURE_REFUSED = "vehicle.departure-refused.v1"

VEHICLE_TOPICS = (VEHICLE_REGISTERED, VEHICLE_INSPECTED, VEHICLE_DECLARED, VEHICLE_EXPORTED)
ALL = (
    *VEHICLE_TOPICS,
    CERTIFICATE_REVOKED,
    DEPARTURE_REFUSED,
    COMPLAINT_FILED,
    COMPLAINT_RESOLVED,
    STATUS_CHANGED,
    ASSESSED,
)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


def all_with_dlq() -> list[str]:
    return [*ALL, *(dlq(t) for t in ALL)]
