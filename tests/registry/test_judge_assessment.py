"""``domain.judge_assessment``: what the registry does with one assessment, as a value (the
service only persists it). Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts import events
from registry import domain
from registry.policy import POLICIES, load

POLICY = load(POLICIES / "v1.yaml")
ASSESSED_AT = datetime(2026, 11, 30, 2, 15, tzinfo=UTC)


def assessed(action: str, exit_rule: str | None = None) -> events.EnterpriseAssessed:
    return events.EnterpriseAssessed.model_validate(
        {
            "enterprise_uscc": "91350100M000100Y43",
            "score": 41.5,
            "tier": "suspension",
            "components": {},
            "recommended_action": action,
            "causes": ["inspection_fail_rate"],
            "policy_version": "v1",
            "assessed_at": ASSESSED_AT,
            "exit_rule": exit_rule,
        }
    )


def test_an_applied_recommendation_carries_the_history_line() -> None:
    judged = domain.judge_assessment(POLICY, assessed("suspend"), "warned", None, None)
    assert (judged.outcome, judged.action, judged.target) == ("applied", "suspend", "suspended")
    assert judged.why == "assessment: score 41.5, tier suspension (scoring policy v1)"


def test_a_regulator_decision_after_the_assessment_wins_except_over_an_immediate_exit() -> None:
    later = ASSESSED_AT + timedelta(minutes=1)
    overruled = domain.judge_assessment(POLICY, assessed("suspend"), "admitted", None, later)
    assert (overruled.outcome, overruled.pending) == ("refused", False)
    assert "was assessed before the regulator's decision" in overruled.why
    forged = assessed("exit", exit_rule="forged_inspection")
    exit_ = domain.judge_assessment(POLICY, forged, "admitted", None, later)
    assert (exit_.outcome, exit_.target) == ("applied", "exited")
    assert exit_.why.endswith(", exit rule forged_inspection (scoring policy v1)")


def test_a_reinstatement_awaits_the_regulator_once_until_the_next_status_change() -> None:
    first = domain.judge_assessment(POLICY, assessed("reinstate"), "suspended", None, None)
    assert (first.outcome, first.pending) == ("awaiting_regulator", True)
    again = domain.judge_assessment(POLICY, assessed("reinstate"), "suspended", "reinstate", None)
    assert again.outcome == "none"  # recorded already: the history is not flooded


def test_none_keeps_the_current_decision() -> None:
    assert domain.judge_assessment(POLICY, assessed("none"), "warned", None, None).outcome == "none"
