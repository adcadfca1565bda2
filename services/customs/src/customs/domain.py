"""Customs gates (DOMAIN.md §5): a declaration is accepted only if all hold. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

GOOD_STANDING = frozenset({"admitted", "warned"})


@dataclass(frozen=True)
class VehicleFacts:
    enterprise_uscc: str
    first_registration_date: date
    exported: bool


@dataclass(frozen=True)
class InspectionFacts:
    verdict: str
    certificate_no: str | None
    valid_until: date | None
    revoked: bool = False


@dataclass(frozen=True)
class Lodged:
    vin: str
    enterprise_uscc: str
    certificate_no: str | None
    export_licence_no: str | None
    after_sales_letter_ref: str | None
    declared_at: datetime


@dataclass(frozen=True)
class Decision:
    outcome: str  # accepted | rejected
    reasons: list[str]
    details: dict[str, str]


def must_wait(vehicle: VehicleFacts | None, inspection: InspectionFacts | None) -> bool:
    """A gate that cannot be judged yet because its event may still be on its way."""
    return vehicle is None or inspection is None


def decide(
    lodged: Lodged,
    *,
    vehicle: VehicleFacts | None,
    standing: str | None,
    inspection: InspectionFacts | None,
    letter_required_from: date,
    letter_max_age_days: int,
) -> Decision:
    """Every failing gate is a reason, not just the first."""
    reasons: list[str] = []
    details: dict[str, str] = {}
    declared_on = lodged.declared_at.date()
    if vehicle is None:
        reasons.append("vehicle_unknown")
    else:
        if vehicle.enterprise_uscc != lodged.enterprise_uscc:
            reasons.append("vehicle_not_owned")
        if vehicle.exported:
            reasons.append("already_exported")
        age_days = (declared_on - vehicle.first_registration_date).days
        if (
            declared_on >= letter_required_from
            and age_days <= letter_max_age_days
            and not lodged.after_sales_letter_ref
        ):
            reasons.append("after_sales_letter_missing")
    if standing not in GOOD_STANDING:
        reasons.append("enterprise_not_in_good_standing")
        details["enterprise_not_in_good_standing"] = f"enterprise_{standing or 'unknown'}"
    if inspection is None:
        reasons.append("inspection_missing")
    elif inspection.verdict != "pass":
        reasons.append("inspection_failed")
    elif inspection.revoked:
        reasons.append("certificate_revoked")
    else:
        if inspection.valid_until is None or inspection.valid_until < declared_on:
            reasons.append("inspection_expired")
        if inspection.certificate_no != lodged.certificate_no:
            reasons.append("certificate_mismatch")
    if not lodged.export_licence_no:
        reasons.append("licence_missing")
    return Decision("rejected" if reasons else "accepted", reasons, details)
