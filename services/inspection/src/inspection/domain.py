"""The checklist's completeness, the verdict and the fraud signals (DOMAIN.md §4), by the
rules of an ``InspectionPolicy``; :func:`inspect` judges a whole report into the inspection it
decides, or the problem it is refused with. Pure: the service reads and writes."""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from stdnum.iso7064 import mod_37_36

from contracts.identifiers import model_year_mismatch
from inspection.policy import InspectionPolicy
from inspection.schemas import InspectionCreate
from servicekit.clock import Claimed, check_claims, civil_date
from servicekit.problems import Conflict, NotFound, Problem
from servicekit.standing import in_good_standing

_CERT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U

UNKNOWN_STANDING_PASSES = True
"""An enterprise whose status this service has not heard of yet may have its vehicle inspected:
the vehicle reached us, so the registry admitted the enterprise when it registered it, and the
status event may still be on its way (it travels on another topic). Any known status outside
good standing (applied, suspended, exited, expired, rejected) is refused."""


class ChecklistError(Exception):
    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(p["message"] for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class ItemReport:
    code: str
    result: str
    note: str | None = None


@dataclass(frozen=True)
class Verdict:
    verdict: str
    failed_items: list[str]
    remarks: list[str]
    fraud_signals: list[str]


@dataclass(frozen=True, slots=True)
class Vehicle:
    """What the service knows of a registered vehicle when a report on it arrives."""

    enterprise_uscc: str
    model_year: int
    mileage_km: int
    transfer_endorsed_on: date | None
    standing: str | None
    """Its enterprise's status as last heard; None: not heard of yet."""


@dataclass(frozen=True, slots=True)
class Earlier:
    """The vehicle's inspections before this one."""

    count: int
    max_odometer_km: int | None


@dataclass(frozen=True)
class Inspected:
    """A decided inspection, named as the ``inspections`` row: the service inserts it and
    publishes its ``vehicle.inspected`` event from it."""

    id: str
    vin: str
    enterprise_uscc: str
    station_id: str
    inspector: str | None
    inspected_at: datetime
    """The station's claim, within the bounds :func:`inspect` judged."""
    odometer_km: int
    verdict: str
    first_inspection: bool
    items: list[dict[str, Any]]
    """Every reported item with its severity under the policy: code, result, severity, note."""
    failed_items: list[str]
    remarks: list[str]
    fraud_signals: list[str]
    certificate_no: str | None
    valid_until: date | None
    received_at: datetime
    """The server's time at posting."""
    policy_version: str


def inspect(
    report: InspectionCreate,
    policy: InspectionPolicy,
    *,
    station_id: str,
    vehicle: Vehicle | None,
    earlier: Earlier,
    now: datetime,
    skew: timedelta,
) -> Inspected | Problem:
    """The report, posted at ``now`` by ``station_id``, decided: the inspection (a pass with its
    certificate number and validity), or the problem it is refused with (nothing to write)."""
    items = [ItemReport(i.code, i.result, i.note) for i in report.items]
    known = _admitted(report, items, vehicle, policy, now, skew)
    if isinstance(known, Problem):
        return known
    verdict = decide(
        items,
        policy,
        vin=report.vin,
        model_year=known.model_year,
        odometer_km=report.odometer_km,
        mileage_floor_km=max(known.mileage_km, earlier.max_odometer_km or 0),
    )
    passed = verdict.verdict == "pass"
    return Inspected(
        id=str(uuid.uuid4()),
        vin=report.vin,
        enterprise_uscc=known.enterprise_uscc,
        station_id=station_id,
        inspector=report.inspector,
        inspected_at=report.inspected_at,
        odometer_km=report.odometer_km,
        verdict=verdict.verdict,
        first_inspection=earlier.count == 0,
        items=[_with_severity(i, policy) for i in items],
        failed_items=verdict.failed_items,
        remarks=verdict.remarks,
        fraud_signals=verdict.fraud_signals,
        certificate_no=new_certificate_no(civil_date(now)) if passed else None,
        valid_until=certificate_valid_until(report.inspected_at, policy) if passed else None,
        received_at=now,
        policy_version=policy.version,
    )


def _admitted(
    report: InspectionCreate,
    items: Sequence[ItemReport],
    vehicle: Vehicle | None,
    policy: InspectionPolicy,
    now: datetime,
    skew: timedelta,
) -> Vehicle | Problem:
    """The vehicle, if the report may be decided on it; otherwise the first refusal, in this
    order: an invalid checklist (422), an unregistered vehicle (404), ``inspected_at`` beyond
    ``skew`` in the future, older than the policy's posting limit or before the transfer
    endorsement (422), the enterprise out of good standing (409)."""
    try:
        check_items(items, policy)
    except ChecklistError as exc:
        return Problem("checklist-invalid", str(exc), status=422, errors=exc.problems)
    if vehicle is None:
        return NotFound(
            "vehicle-not-registered",
            f"Vehicle {report.vin} is not registered for export; register it with the "
            "registry first (it may take a moment to arrive here).",
        )
    claim = Claimed(
        report.inspected_at,
        policy.posting_limit,
        not_before=vehicle.transfer_endorsed_on,
        not_before_rule="inspected_before_transfer_endorsement",
    )
    try:
        check_claims({"inspected_at": claim}, now=now, skew=skew)
    except Problem as problem:
        return problem
    if not in_good_standing(vehicle.standing, unknown_passes=UNKNOWN_STANDING_PASSES):
        return Conflict(
            f"enterprise-{vehicle.standing}",
            f"The exporting enterprise is {vehicle.standing}; its vehicles cannot be inspected.",
            enterprise_status=vehicle.standing,
        )
    return vehicle


def _with_severity(item: ItemReport, policy: InspectionPolicy) -> dict[str, Any]:
    """A reported item as stored and published: with its severity under the policy."""
    severity = policy.checklist[item.code]
    return {"code": item.code, "result": item.result, "severity": severity, "note": item.note}


def check_items(items: Sequence[ItemReport], policy: InspectionPolicy) -> None:
    """Every checklist code exactly once; not_applicable only where it can be."""
    checklist = policy.checklist
    counts = Counter(i.code for i in items)
    problems = []
    unknown = sorted(c for c in counts if c not in checklist)
    missing = sorted(c for c in checklist if c not in counts)
    duplicates = sorted(c for c, n in counts.items() if n > 1 and c in checklist)
    not_applicable = sorted(
        i.code
        for i in items
        if i.result == "not_applicable"
        and i.code in checklist
        and i.code not in policy.may_not_apply
    )
    for rule, codes, text in (
        ("checklist_unknown_codes", unknown, "unknown checklist codes"),
        ("checklist_missing_codes", missing, "checklist codes not reported"),
        ("checklist_duplicate_codes", duplicates, "checklist codes reported more than once"),
        ("checklist_item_always_applies", not_applicable, "items that always apply"),
    ):
        if codes:
            problems.append(
                {"field": "items", "rule": rule, "message": f"{text}: {', '.join(codes)}"}
            )
    if problems:
        raise ChecklistError(problems)


def decide(
    items: Sequence[ItemReport],
    policy: InspectionPolicy,
    *,
    vin: str,
    model_year: int,
    odometer_km: int,
    mileage_floor_km: int,
) -> Verdict:
    """The verdict from item severities, with the fraud signals the service sees itself.

    ``mileage_floor_km`` is the highest mileage known before (registration or an earlier
    inspection); an odometer below it is a rollback (and fails, if the policy says so). The
    model year is judged against position 10 of the VIN only where that code is mandatory.
    Times are not judged here: a report dated out of bounds is refused before a verdict.
    """
    severity, blocking_severities = policy.checklist, policy.blocking_severities
    failed = [i.code for i in items if i.result == "fail"]
    blocking = [c for c in failed if severity[c] in blocking_severities]
    remarks = [c for c in failed if severity[c] not in blocking_severities]
    signals = []
    rollback = odometer_km < mileage_floor_km
    if rollback:
        signals.append("odometer_rollback")
    if model_year_mismatch(vin, model_year):
        signals.append("vin_model_year_mismatch")
    fails = blocking or (rollback and policy.odometer_rollback_fails)
    return Verdict("fail" if fails else "pass", blocking, remarks, signals)


def certificate_valid_until(inspected_at: datetime, policy: InspectionPolicy) -> date:
    """Validity runs from the day the vehicle was inspected (China's civil date), not from
    the posting."""
    return civil_date(inspected_at) + timedelta(days=policy.certificate_valid_days)


def new_certificate_no(today: date) -> str:
    """``EXC-<yymm>-<16 random base32>-<check>``: 80 random bits, ISO 7064 checked."""
    # one 80-bit draw, written in base 32 (16 symbols of 5 bits): one urandom call, not 16
    bits = int.from_bytes(secrets.token_bytes(10))
    random_part = "".join(_CERT_ALPHABET[(bits >> (5 * i)) & 31] for i in range(16))
    body = f"{today:%y%m}{random_part}"
    return f"EXC-{body[:4]}-{body[4:]}-{mod_37_36.calc_check_digit(body)}"


def certificate_checksum_ok(certificate_no: str) -> bool:
    parts = certificate_no.upper().split("-")
    if len(parts) != 4 or parts[0] != "EXC":
        return False
    body = parts[1] + parts[2]
    if not body.isalnum():
        return False
    return mod_37_36.calc_check_digit(body) == parts[3]
