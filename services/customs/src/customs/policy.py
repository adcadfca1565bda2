"""The customs gate policy, versioned YAML under services/customs/policies/."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PositiveInt

from servicekit import policyfile
from servicekit.policyfile import PolicyFile

POLICIES = Path(__file__).resolve().parents[2] / "policies"


class AfterSalesLetter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    required_from: date
    max_age_days: PositiveInt
    """Inclusive: a car first registered exactly this many days before needs the letter."""


class ClaimMaxAge(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    declared_at: PositiveInt
    released_at: PositiveInt
    departed_at: PositiveInt

    def of(self, field: str) -> timedelta:
        return timedelta(hours=getattr(self, field))


class CustomsPolicy(PolicyFile):
    after_sales_letter: AfterSalesLetter
    claim_max_age_hours: ClaimMaxAge


@cache
def load(path: Path) -> CustomsPolicy:
    """The file, validated; read once per process (the hot path asks for it per lodging)."""
    return policyfile.load(CustomsPolicy, path)
