"""The assessment policy, loaded from YAML (services/scoring/policies/)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Prior(_Frozen):
    value: float
    strength: float
    below_vehicles: float


class Quality(_Frozen):
    weight: float
    tolerance: float
    damage_fail_counts: float
    damage_items: frozenset[str]


class Integrity(_Frozen):
    weight: float
    tolerance: float
    violation_reasons: frozenset[str]
    violation_signals: frozenset[str]


class GateCompliance(_Frozen):
    weight: float
    tolerance: float
    gate_reasons: frozenset[str]


class AfterSales(_Frozen):
    weight: float
    tolerance: float
    resolved_within_days: int
    resolved_weight: float


class Activity(_Frozen):
    weight: float


class Components(_Frozen):
    quality: Quality
    integrity: Integrity
    gate_compliance: GateCompliance
    after_sales: AfterSales
    activity: Activity


class ExitRules(_Frozen):
    suspensions_in_window: int
    export_while: frozenset[str]
    forged_inspection: bool
    same_vin_exported_twice: bool


class Policy(_Frozen):
    version: str
    window_days: int
    warning_window_days: int
    prior: Prior
    components: Components
    tiers: dict[str, float]
    hysteresis: float
    exit_rules: ExitRules

    @cached_property
    def weights(self) -> dict[str, float]:
        return {name: getattr(self.components, name).weight for name in Components.model_fields}

    @cached_property
    def tier_names(self) -> tuple[str, ...]:
        """Best first."""
        return tuple(name for name, _ in sorted(self.tiers.items(), key=lambda kv: -kv[1]))


def load(path: Path) -> Policy:
    return Policy.model_validate(yaml.safe_load(path.read_text()))
