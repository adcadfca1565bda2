"""Customs gates (DOMAIN.md §5): a declaration is accepted only if all hold. Pure.

Every gate is judged at the moment customs received the lodging (``received_at``, the
server's clock), never at the broker's claimed ``declared_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from customs.policy import CustomsPolicy
from servicekit.clock import civil_date
from servicekit.standing import in_good_standing

UNKNOWN_STANDING_PASSES = False
"""Customs never accepts on a standing it has not heard of: such a lodging waits for the
admission (``settle``: an unknown standing is not a certain refusal) or is refused when the
wait times out; a release or departure is refused."""

OPEN_STATUSES = ("pending", "accepted", "released")
"""A declaration in one of these holds its VIN: another lodging is ``declaration_open``."""


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
    received_at: datetime


@dataclass(frozen=True)
class Decision:
    outcome: str  # accepted | rejected
    reasons: list[str]
    details: dict[str, str]


@dataclass(frozen=True)
class Known:
    """What customs knows of a lodging's vehicle, inspection and enterprise when it judges it.
    ``standing`` None: no status event received yet; ``open_declaration``: another open
    declaration of the VIN."""

    vehicle: VehicleFacts | None
    standing: str | None
    inspection: InspectionFacts | None
    open_declaration: str | None = None


def decide(lodged: Lodged, known: Known, policy: CustomsPolicy) -> Decision:
    """Every failing gate is a reason, not just the first."""
    reasons: list[str] = []
    details: dict[str, str] = {}
    received_on = civil_date(lodged.received_at)
    vehicle, inspection = known.vehicle, known.inspection
    if known.open_declaration is not None:
        reasons.append("declaration_open")
        details["declaration_open"] = known.open_declaration
    if vehicle is None:
        reasons.append("vehicle_unknown")
    else:
        if vehicle.enterprise_uscc != lodged.enterprise_uscc:
            reasons.append("vehicle_not_owned")
        if vehicle.exported:
            reasons.append("already_exported")
        if needs_after_sales_letter(vehicle, received_on, policy) and not (
            lodged.after_sales_letter_ref
        ):
            reasons.append("after_sales_letter_missing")
    _standing_gate(known.standing, reasons, details)
    if inspection is None:
        reasons.append("inspection_missing")
    elif inspection.verdict != "pass":
        reasons.append("inspection_failed")
    elif inspection.revoked:
        reasons.append("certificate_revoked")
    else:
        if inspection.valid_until is None or inspection.valid_until < received_on:
            reasons.append("inspection_expired")
        if inspection.certificate_no != lodged.certificate_no:
            reasons.append("certificate_mismatch")
    if not lodged.export_licence_no:
        reasons.append("licence_missing")
    return Decision("rejected" if reasons else "accepted", reasons, details)


def needs_after_sales_letter(
    vehicle: VehicleFacts, received_on: date, policy: CustomsPolicy
) -> bool:
    rule = policy.after_sales_letter
    age_days = (received_on - vehicle.first_registration_date).days
    return received_on >= rule.required_from and age_days <= rule.max_age_days


_SURE = frozenset(
    {
        "declaration_open",
        "vehicle_not_owned",
        "already_exported",
        "after_sales_letter_missing",
        "licence_missing",
    }
)
"""Reasons no event still on its way can take back: they come from the lodging itself, our own
records (open declarations, exports) or a vehicle already known (its owner and first
registration do not change). A known bad standing is certain too (reinstatement is the
regulator's later decision, not an event that answers this lodging); an unknown one is not
(the admission may be on its way, like the vehicle)."""


def _standing_gate(standing: str | None, reasons: list[str], details: dict[str, str]) -> None:
    if not in_good_standing(standing, unknown_passes=UNKNOWN_STANDING_PASSES):
        reasons.append("enterprise_not_in_good_standing")
        details["enterprise_not_in_good_standing"] = f"enterprise_{standing or 'unknown'}"


def settle(
    lodged: Lodged, known: Known, policy: CustomsPolicy, *, force: bool = False
) -> Decision | None:
    """The decision now, or None while a missing event could still make it acceptable.

    With the vehicle and its inspection known (or ``force``: the wait timed out) the gates
    decide on what is known. Otherwise a declaration is rejected at once if a reason is
    already certain, with the certain reasons only (``vehicle_unknown``/``inspection_missing``
    and a mismatched or failed inspection may yet be answered by an event in flight). The
    inspection's own reasons are certain when it carries the declared certificate: a revoked
    certificate is not unrevoked, an expired one does not grow younger, and a newer
    inspection would issue a different certificate number."""
    decision = decide(lodged, known, policy)
    if force or (known.vehicle is not None and known.inspection is not None):
        return decision
    sure = [
        r
        for r in decision.reasons
        if r in _SURE
        or (r == "enterprise_not_in_good_standing" and known.standing is not None)
        or _sure_of_certificate(r, lodged, known.inspection)
    ]
    if not sure:
        return None
    return Decision("rejected", sure, {k: v for k, v in decision.details.items() if k in sure})


def _sure_of_certificate(reason: str, lodged: Lodged, inspection: InspectionFacts | None) -> bool:
    return (
        reason in ("certificate_revoked", "inspection_expired")
        and inspection is not None
        and inspection.certificate_no is not None
        and inspection.certificate_no == lodged.certificate_no
    )


def departure_prerequisites(*, exported: bool, status: str) -> list[str]:
    """A departure needs a released declaration of a VIN not yet exported."""
    if exported or status == "exported":
        return ["already_exported"]
    if status != "released":
        return ["declaration_not_released"]
    return []


def step_refusals(
    *,
    standing: str | None,
    inspection: InspectionFacts | None,
    certificate_no: str | None,
    received_on: date,
    policy: CustomsPolicy,
) -> tuple[list[str], dict[str, str]]:
    """The gates re-checked at release and at departure, on the day the step was received:
    the enterprise still in good standing, the declared certificate still the vehicle's latest,
    unrevoked and unexpired."""
    reasons: list[str] = []
    details: dict[str, str] = {}
    _standing_gate(standing, reasons, details)
    if inspection is None or inspection.certificate_no != certificate_no:
        reasons.append("certificate_mismatch")
    elif inspection.revoked:
        reasons.append("certificate_revoked")
    elif inspection.valid_until is None or inspection.valid_until < received_on:
        reasons.append("inspection_expired")
    return reasons, details
