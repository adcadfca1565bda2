"""The registry's policy file (services/registry/policies/), loaded once per process."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from servicekit import policyfile

POLICIES = Path(__file__).resolve().parents[2] / "policies"

Recommendation = Literal["warn", "suspend", "exit", "reinstate"]


class RegistryPolicy(policyfile.PolicyFile):
    automatic_actions: dict[Recommendation, Literal["warn", "suspend", "exit", "reinstate"]]
    """Recommendation -> the decision taken by itself (a recommendation missing here is
    recorded as refused)."""
    auto_reinstate: bool = False
    """Reinstate from ``suspended`` automatically; off: the regulator decides (review list)."""
    admission_valid_days: int
    reapply_after_exit_days: int
    min_dealer_appraisers: int
    stalled_after_days: int
    transfer_endorsement_max_age_days: int
    first_registration_max_age_days: int
    model_year_max_lead_years: int


def load(path: Path) -> RegistryPolicy:
    return policyfile.load(RegistryPolicy, path)
