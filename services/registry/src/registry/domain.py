"""Registry rules (DOMAIN.md §1-3): pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal, cast

from contracts.events import GOOD_STANDING, EnterpriseAssessed
from contracts.identifiers import model_year_mismatch, vin_model_years
from registry.policy import Recommendation, RegistryPolicy
from servicekit.clock import Claimed, check_claims

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
    "exit": {"admitted": "exited", "warned": "exited", "suspended": "exited", "expired": "exited"},
    "expire": {"admitted": "expired", "warned": "expired"},
}
SYSTEM_ACTIONS = frozenset({"expire"})
IMMEDIATE_EXIT_FROM = frozenset(
    {"applied", "admitted", "warned", "suspended", "rejected", "expired"}
)
"""An exit whose assessment names an immediate-exit rule applies from every status but
``exited``."""
ADMINISTRATIVE_ACTIONS = frozenset({"renew"})
"""Admin decisions that do not judge the enterprise's standing: they do not overrule an
assessment made before them (a renewal must not escape an exit recommended before it)."""
MAY_REGISTER_VEHICLES = GOOD_STANDING


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


def check_vehicle_dates(
    *,
    first_registration_date: date,
    transfer_endorsed_on: date,
    now: datetime,
    skew: timedelta,
    policy: RegistryPolicy,
) -> None:
    """The enterprise's claimed dates, bounded by the server's clock (422
    ``time_out_of_range`` naming each field); an endorsement before the car's first
    registration is ``endorsed_before_first_registration``."""
    oldest = timedelta(days=policy.first_registration_max_age_days)
    check_claims(
        {
            "first_registration_date": Claimed(first_registration_date, oldest),
            "transfer_endorsed_on": Claimed(
                transfer_endorsed_on,
                oldest,
                not_before=first_registration_date,
                not_before_rule="endorsed_before_first_registration",
            ),
        },
        now=now,
        skew=skew,
    )


def check_vehicle(
    *,
    vin: str,
    model_year: int,
    first_registration_date: date,
    transfer_endorsed_on: date,
    today: date,
    policy: RegistryPolicy,
) -> None:
    """The rules past the time bounds (``today``: China's civil date)."""
    if model_year_mismatch(vin, model_year):
        raise RuleViolation(
            "vin_model_year_mismatch",
            f"VIN position 10 ({vin[9]!r}) stands for {vin_model_years(vin)}, not {model_year}",
            field="model_year",
        )
    latest_model_year = first_registration_date.year + policy.model_year_max_lead_years
    if model_year > latest_model_year:
        raise RuleViolation(
            "model_year_after_first_registration",
            f"model year {model_year} is more than {policy.model_year_max_lead_years} year(s) "
            f"after the first registration ({first_registration_date.isoformat()})",
            field="model_year",
        )
    max_age = policy.transfer_endorsement_max_age_days
    if (today - transfer_endorsed_on).days > max_age:
        raise RuleViolation(
            "transfer_endorsement_expired",
            f"the transfer endorsement is older than {max_age} days",
            field="transfer_endorsed_on",
        )


# -- admission over time --------------------------------------------------------------------
EXPIRES = frozenset({"admitted", "warned"})


def effective_status(status: str, admission_valid_until: date | None, today: date) -> str:
    """``expired`` happens by itself when the admission year passes without renewal."""
    if status in EXPIRES and admission_valid_until is not None and admission_valid_until < today:
        return "expired"
    return status


def registration_refused(
    status: str, admission_valid_until: date | None, today: date
) -> str | None:
    """None when an enterprise in ``status`` may register vehicles today; else the status it
    is refused for (``expired`` for an admission that lapsed, recorded or not)."""
    effective = effective_status(status, admission_valid_until, today)
    return None if effective in MAY_REGISTER_VEHICLES else effective


# -- automatic decisions from enterprise.assessed -------------------------------------------
Outcome = Literal["none", "applied", "refused", "awaiting_regulator"]


@dataclass(frozen=True)
class Judgement:
    """What the registry does with one recommendation: apply ``action`` (-> ``target``),
    refuse it, or leave it to the regulator; ``why`` is the history's line. ``pending``: the
    recommendation stays the enterprise's pending one (the review list's entry) until its next
    status change."""

    outcome: Outcome
    action: str | None = None
    target: str | None = None
    why: str = ""
    pending: bool = False


def judge_recommendation(
    policy: RegistryPolicy, recommended: str, status: str, exit_rule: str | None
) -> Judgement:
    if recommended == "none":
        return Judgement("none")
    action = policy.automatic_actions.get(cast(Recommendation, recommended))
    if action is None:
        why = f"recommendation refused: {recommended} is no automatic action in policy"
        return Judgement("refused", why=f"{why} {policy.version}")
    target = next_status(status, action)
    if action == "exit" and exit_rule is not None and status in IMMEDIATE_EXIT_FROM:
        target = "exited"
    if target is None:
        return Judgement(
            "refused", action, why=f"recommendation refused: {action} not allowed from {status}"
        )
    if action == "reinstate" and status == "suspended" and not policy.auto_reinstate:
        return Judgement(
            "awaiting_regulator",
            action,
            target,
            why="recommendation: reinstate, awaiting the regulator's decision",
        )
    return Judgement("applied", action, target)


def judge_assessment(
    policy: RegistryPolicy,
    data: EnterpriseAssessed,
    status: str,
    pending: str | None,
    overruled_at: datetime | None,
) -> Judgement:
    """What the registry does with an assessment of an enterprise in ``status``: the policy's
    automatic decision, or the recommendation recorded as refused (the status machine does
    not allow it) or awaiting the regulator (reinstatement from suspended). A judging admin
    decision (``overruled_at``) at or after the assessment's moment wins, except over an
    immediate exit (a rule that exits regardless of anything else fired). A recommendation
    ``pending`` already since the last status change is not recorded again."""
    recommended = data.recommended_action
    if recommended == "none":  # "keep the current decision"
        return Judgement("none")
    scored = f"assessment: score {data.score:.1f}, tier {data.tier}"
    if overruled_at is not None and overruled_at >= data.assessed_at and not data.exit_rule:
        why = (
            f"recommendation refused: {recommended} was assessed before the "
            f"regulator's decision of {overruled_at.isoformat()}"
        )
        return Judgement("refused", why=f"{why} ({scored})")
    judged = judge_recommendation(policy, recommended, status, data.exit_rule)
    if judged.outcome == "applied":
        rule = f", exit rule {data.exit_rule}" if data.exit_rule else ""
        return replace(judged, why=f"{scored}{rule} (scoring policy {data.policy_version})")
    if pending == recommended:
        return Judgement("none")  # recorded already: the history is not flooded
    return replace(judged, why=f"{judged.why} ({scored})", pending=True)


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
