"""The assessment policy, loaded from versioned YAML (services/scoring/policies/)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from servicekit import policyfile
from servicekit.policyfile import PolicyFile

Action = Literal["none", "warn", "suspend", "exit", "reinstate"]
RATED = ("quality", "integrity", "gate_compliance", "after_sales")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Prior(_Frozen):
    value: float
    strength: float
    below: float
    """A component whose evidence is below this is shrunk toward ``value``."""
    evidence: Literal["vehicles", "own_denominator"]
    """What counts as a component's evidence: the enterprise's vehicles in the window (v1, for
    every component) or the component's own denominator (first inspections, vehicles,
    declarations, exports)."""


class Quality(_Frozen):
    weight: float
    tolerance: float
    damage_fail_counts: float
    damage_items: frozenset[str]


class Integrity(_Frozen):
    weight: float
    tolerance: float
    violation_reasons: frozenset[str]
    """Refusal reasons that are identity violations."""
    violation_signals: frozenset[str]


class GateCompliance(_Frozen):
    weight: float
    tolerance: float
    gate_reasons: frozenset[str]
    """Refusal reasons that are gate rejections."""


class AfterSales(_Frozen):
    weight: float
    tolerance: float
    resolved_within_days: int
    resolved_weight: float
    category_weights: dict[str, float]
    """A complaint of one of these categories counts this many times (others once)."""


class Activity(_Frozen):
    weight: float


class Components(_Frozen):
    quality: Quality
    integrity: Integrity
    gate_compliance: GateCompliance
    after_sales: AfterSales
    activity: Activity


class Refusals(_Frozen):
    """Where refusals count beyond the two reason lists."""

    other_reasons: Literal["integrity", "gate_compliance", "nowhere"]
    """A reason in neither list (one added after this policy was written)."""
    departures: Literal["by_reason", "one_gate_rejection"]
    """A refused release or departure: each reason by the lists, or one gate rejection
    whatever its reasons (v1)."""


class ComplaintExit(_Frozen):
    categories: frozenset[str]
    count: int
    """This many complaints of these categories filed within window_days -> exit."""


class ExitRules(_Frozen):
    suspensions_in_window: int
    export_while: frozenset[str]
    forged_inspection: bool
    same_vin_exported_twice: bool
    complaints_in_window: ComplaintExit | None


class Actions(_Frozen):
    """What scoring recommends to the registry when the tier moves (never out of ``exit``:
    that is final, the enterprise reapplies)."""

    down: dict[str, Action]
    """Into a worse tier."""
    up: dict[str, Action]
    """Into a better tier; a tier not listed keeps the current decision (none)."""
    first_assessment_warns: bool
    """Whether a new enterprise's first assessment may recommend ``warn``."""


class Policy(PolicyFile):
    window_days: int
    warning_window_days: int
    prior: Prior
    components: Components
    refusals: Refusals
    tiers: dict[str, float]
    hysteresis: float
    exit_rules: ExitRules
    actions: Actions

    @model_validator(mode="after")
    def _reasons_count_once(self) -> Policy:
        both = (
            self.components.integrity.violation_reasons
            & self.components.gate_compliance.gate_reasons
        )
        if both:
            raise ValueError(f"reasons listed for integrity and gate compliance: {sorted(both)}")
        return self

    @cached_property
    def weights(self) -> dict[str, float]:
        return {name: getattr(self.components, name).weight for name in Components.model_fields}

    @cached_property
    def tier_names(self) -> tuple[str, ...]:
        """Best first."""
        return tuple(name for name, _ in sorted(self.tiers.items(), key=lambda kv: -kv[1]))

    @cached_property
    def reason_component(self) -> dict[str, str]:
        """Refusal reason -> the component it counts in (built once: the fold asks per
        reason)."""
        c = self.components
        return {
            **dict.fromkeys(c.gate_compliance.gate_reasons, "gate_compliance"),
            **dict.fromkeys(c.integrity.violation_reasons, "integrity"),
        }


def load(path: Path) -> Policy:
    return policyfile.load(Policy, path)
