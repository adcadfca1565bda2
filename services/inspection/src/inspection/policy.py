"""The inspection policy, versioned YAML under services/inspection/policies/: which checklist
items exist and how severe each is, what fails a verdict, how long a certificate lasts and how
old a report may be when posted. The code keeps the mechanism only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from servicekit import policyfile
from servicekit.policyfile import PolicyFile

POLICIES = Path(__file__).resolve().parents[2] / "policies"

Severity = Literal["critical", "major", "minor"]


class InspectionPolicy(PolicyFile):
    checklist: dict[str, Severity] = Field(min_length=1)
    """Every code a station must report exactly once, with its severity."""
    blocking_severities: frozenset[Severity]
    """A failed item of one of these severities fails the verdict; other failures are remarks."""
    may_not_apply: frozenset[str]
    """Items a station may report ``not_applicable``; every other item always applies."""
    damage_items: frozenset[str]
    """Structural, flood and fire findings: never ``not_applicable``."""
    odometer_rollback_fails: bool
    certificate_valid_days: int = Field(gt=0)
    """Counted from the inspection's own date (``inspected_at``), not from its posting."""
    posting_limit_days: int = Field(gt=0)
    """How old ``inspected_at`` may be when the report reaches us."""

    @model_validator(mode="after")
    def _codes_are_checklist_codes(self) -> InspectionPolicy:
        for name in ("may_not_apply", "damage_items"):
            unknown = sorted(getattr(self, name) - self.checklist.keys())
            if unknown:
                raise ValueError(f"{name} names codes not in the checklist: {unknown}")
        if self.damage_items & self.may_not_apply:
            raise ValueError("damage items always apply: remove them from may_not_apply")
        return self

    @property
    def posting_limit(self) -> timedelta:
        return timedelta(days=self.posting_limit_days)


def load(path: Path) -> InspectionPolicy:
    """The file, validated; the app loads it once, at start."""
    return policyfile.load(InspectionPolicy, path)
