"""The export quality checklist, the verdict and fraud signals (DOMAIN.md §4). Pure."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from stdnum.iso7064 import mod_37_36

from contracts.identifiers import vin_model_years

CHECKLIST: dict[str, str] = {
    "VIN_MATCHES_CERTIFICATE": "critical",
    "ENGINE_NO_MATCHES_CERTIFICATE": "critical",
    "TRANSFER_ENDORSED": "critical",
    "STRUCTURAL_DAMAGE_FREE": "critical",
    "FLOOD_DAMAGE_FREE": "critical",
    "FIRE_DAMAGE_FREE": "critical",
    "ODOMETER_FUNCTIONAL": "major",
    "ENGINE_TRANSMISSION": "major",
    "FLUID_LEAKS": "minor",
    "OPEN_RECALLS_REMEDIED": "major",
    "BRAKES": "critical",
    "STEERING": "critical",
    "TYRES": "major",
    "LIGHTS_SIGNALS": "major",
    "GLAZING": "major",
    "SEATBELTS_AIRBAGS": "critical",
    "EMISSIONS": "major",
    "CORROSION": "minor",
    "BODY_PANELS": "minor",
}
# Items a station may mark not_applicable: an electric car has no emissions or fluid leaks
# to test, not every model has recalls. Every other item always applies.
MAY_NOT_APPLY = frozenset(
    {"EMISSIONS", "FLUID_LEAKS", "OPEN_RECALLS_REMEDIED", "ENGINE_TRANSMISSION"}
)
DAMAGE_ITEMS = frozenset({"STRUCTURAL_DAMAGE_FREE", "FLOOD_DAMAGE_FREE", "FIRE_DAMAGE_FREE"})

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


def check_items(items: Sequence[ItemReport]) -> None:
    """Every checklist code exactly once; not_applicable only where it can be."""
    counts = Counter(i.code for i in items)
    problems = []
    unknown = sorted(c for c in counts if c not in CHECKLIST)
    missing = sorted(c for c in CHECKLIST if c not in counts)
    duplicates = sorted(c for c, n in counts.items() if n > 1 and c in CHECKLIST)
    not_applicable = sorted(
        i.code
        for i in items
        if i.result == "not_applicable" and i.code in CHECKLIST and i.code not in MAY_NOT_APPLY
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
    *,
    vin: str,
    model_year: int,
    odometer_km: int,
    mileage_floor_km: int,
    inspected_at: datetime,
    registered_at: datetime,
    now: datetime,
) -> Verdict:
    """The verdict from item severities, with the fraud signals the service sees itself.

    ``mileage_floor_km`` is the highest mileage known before (registration or an earlier
    inspection); an odometer below it is a rollback and forces ``fail``.
    """
    failed = [i.code for i in items if i.result == "fail"]
    blocking = [c for c in failed if CHECKLIST[c] in ("critical", "major")]
    remarks = [c for c in failed if CHECKLIST[c] == "minor"]
    signals = []
    if odometer_km < mileage_floor_km:
        signals.append("odometer_rollback")
    if model_year not in vin_model_years(vin):
        signals.append("vin_model_year_mismatch")
    if inspected_at > now:
        signals.append("inspected_in_future")
    if inspected_at < registered_at:
        signals.append("inspected_before_registration")
    verdict = "fail" if blocking or "odometer_rollback" in signals else "pass"
    return Verdict(verdict, blocking, remarks, signals)


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
