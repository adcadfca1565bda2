"""The checklist's completeness, the verdict and the fraud signals (DOMAIN.md §4), by the
rules of an ``InspectionPolicy``. Pure."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from stdnum.iso7064 import mod_37_36

from contracts.identifiers import model_year_mismatch
from inspection.policy import InspectionPolicy
from servicekit.clock import civil_date

_CERT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


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
