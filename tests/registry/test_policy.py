"""The registry's policy file: rule values as data, loaded once, refused when malformed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from registry import policy
from registry.policy import POLICIES


def test_policy_v1_holds_the_rule_values_of_domain_md() -> None:
    v1 = policy.load(POLICIES / "v1.yaml")
    assert v1.version == "v1"
    assert v1.automatic_actions == {
        "warn": "warn",
        "suspend": "suspend",
        "exit": "exit",
        "reinstate": "reinstate",
    }
    assert v1.auto_reinstate is False  # reinstatement from suspended: the regulator's
    assert (v1.reapply_after_exit_days, v1.admission_valid_days) == (365, 365)
    assert (v1.transfer_endorsement_max_age_days, v1.model_year_max_lead_years) == (60, 1)
    assert (v1.min_dealer_appraisers, v1.stalled_after_days) == (3, 60)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("auto_reinstate: false", "auto_reinstate: false\nauto_reinstat: true"), "a typo"),
        (("  warn: warn", "  warn: reprimand"), "an action the status machine lacks"),
        (("  warn: warn", "  caution: warn"), "a recommendation scoring never makes"),
    ],
)
def test_a_malformed_policy_file_is_refused_at_load(
    tmp_path: Path, change: tuple[str, str], why: str
) -> None:
    bad = tmp_path / "v1.yaml"
    bad.write_text((POLICIES / "v1.yaml").read_text().replace(*change))
    with pytest.raises(ValidationError):
        policy.load(bad)
