"""Registry rules (DOMAIN.md §1-3): pure functions, no I/O."""

from __future__ import annotations

from datetime import date
from typing import Literal

from contracts.identifiers import vin_model_years

Status = Literal["applied", "admitted", "warned", "suspended", "exited", "rejected", "expired"]
Action = Literal["approve", "reject", "renew", "warn", "suspend", "reinstate", "exit"]

# action -> {from status: to status}
TRANSITIONS: dict[str, dict[str, str]] = {
    "approve": {"applied": "admitted"},
    "reject": {"applied": "rejected"},
    "renew": {"admitted": "admitted", "warned": "warned", "expired": "admitted"},
    "warn": {"admitted": "warned"},
    "suspend": {"admitted": "suspended", "warned": "suspended"},
    "reinstate": {"warned": "admitted", "suspended": "admitted"},
    "exit": {"admitted": "exited", "warned": "exited", "suspended": "exited"},
}
MAY_REGISTER_VEHICLES = frozenset({"admitted", "warned"})


class RuleViolation(Exception):
    """A domain rule refused the request; ``rule`` is a stable slug, ``field`` the input."""

    def __init__(self, rule: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.field = field


def allowed_actions(status: str) -> list[str]:
    return sorted(a for a, moves in TRANSITIONS.items() if status in moves)


def next_status(status: str, action: str) -> str | None:
    return TRANSITIONS.get(action, {}).get(status)


def check_application(kind: str, appraiser_count: int, min_dealer_appraisers: int) -> None:
    if kind == "dealer" and appraiser_count < min_dealer_appraisers:
        raise RuleViolation(
            "dealer_min_appraisers",
            f"a dealer needs at least {min_dealer_appraisers} certified appraisers",
            field="appraiser_count",
        )


def check_province(uscc: str, province: str) -> None:
    """USCC positions 3-8 are the registering admin division; its province is the first two."""
    if uscc[2:4] != province[:2]:
        raise RuleViolation(
            "province_mismatch",
            f"province {province} does not match the USCC's admin division {uscc[2:8]}",
            field="province",
        )


def check_vehicle(
    *,
    vin: str,
    model_year: int,
    first_registration_date: date,
    transfer_endorsed_on: date,
    today: date,
    endorsement_max_age_days: int,
) -> None:
    if model_year not in vin_model_years(vin):
        raise RuleViolation(
            "vin_model_year_mismatch",
            f"VIN position 10 ({vin[9]!r}) stands for {vin_model_years(vin)}, not {model_year}",
            field="model_year",
        )
    if first_registration_date > today:
        raise RuleViolation(
            "date_in_future",
            "first registration date is in the future",
            field="first_registration_date",
        )
    if transfer_endorsed_on > today:
        raise RuleViolation(
            "date_in_future",
            "transfer endorsement date is in the future",
            field="transfer_endorsed_on",
        )
    if (today - transfer_endorsed_on).days > endorsement_max_age_days:
        raise RuleViolation(
            "transfer_endorsement_expired",
            f"the transfer endorsement is older than {endorsement_max_age_days} days",
            field="transfer_endorsed_on",
        )
