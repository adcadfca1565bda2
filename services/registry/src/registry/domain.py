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
    "expire": {"admitted": "expired", "warned": "expired"},
}
SYSTEM_ACTIONS = frozenset({"expire"})
MAY_REGISTER_VEHICLES = frozenset({"admitted", "warned"})


class RuleViolation(Exception):
    """A domain rule refused the request; ``rule`` is a stable slug, ``field`` the input."""

    def __init__(self, rule: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.field = field


def allowed_actions(status: str) -> list[str]:
    return sorted(
        a for a, moves in TRANSITIONS.items() if status in moves and a not in SYSTEM_ACTIONS
    )


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


# -- admission over time --------------------------------------------------------------------
EXPIRES = frozenset({"admitted", "warned"})


def effective_status(status: str, admission_valid_until: date | None, today: date) -> str:
    """``expired`` happens by itself when the admission year passes without renewal."""
    if status in EXPIRES and admission_valid_until is not None and admission_valid_until < today:
        return "expired"
    return status


# -- automatic decisions from enterprise.assessed -------------------------------------------
POLICY_ACTIONS: dict[str, str] = {
    "warn": "warn",
    "suspend": "suspend",
    "exit": "exit",
    "reinstate": "reinstate",
}


def automatic_action(recommended: str, status: str) -> str | None:
    """The decision the policy takes for a recommendation, if the status machine allows it."""
    action = POLICY_ACTIONS.get(recommended)
    if action is None or next_status(status, action) is None:
        return None
    return action


# -- a vehicle's stage from its timeline ---------------------------------------------------
STAGES = (
    "registered",
    "inspected_passed",
    "inspected_failed",
    "declared",
    "declaration_rejected",
    "exported",
    "stalled",
)
_STAGE_OF_EVENT = {
    ("vehicle.registered", None): "registered",
    ("vehicle.inspected", "pass"): "inspected_passed",
    ("vehicle.inspected", "fail"): "inspected_failed",
    ("vehicle.declared", "accepted"): "declared",
    ("vehicle.declared", "rejected"): "declaration_rejected",
    ("vehicle.exported", None): "exported",
}


def stage_of(event_type: str, outcome: str | None) -> str:
    return _STAGE_OF_EVENT[(event_type, outcome)]


def stage_after(stages_in_time_order: list[str]) -> str:
    """The stage after the events in the order they happened (not the order they arrived);
    exported is final."""
    stage = "registered"
    for step in stages_in_time_order:
        if stage == "exported":
            break
        stage = step
    return stage


def visible_stage(stage: str, registered_on: date, today: date, stalled_after_days: int) -> str:
    """A vehicle not exported 60 days after registration is ``stalled``: its temporary
    plates have expired."""
    if stage != "exported" and (today - registered_on).days > stalled_after_days:
        return "stalled"
    return stage


COMPLAINT_CATEGORIES = ("no_spare_parts", "warranty_refused", "misrepresented_condition", "other")
