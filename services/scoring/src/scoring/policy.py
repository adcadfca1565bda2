"""The assessment policy, loaded from YAML (services/scoring/policies/)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Prior(_Frozen):
    value: float
    strength: float


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


class Policy(_Frozen):
    version: str
    window_days: int
    warning_window_days: int
    prior: Prior
    components: Components
    tiers: dict[str, float]
    hysteresis: float


def load(path: Path) -> Policy:
    return Policy.model_validate(yaml.safe_load(path.read_text()))
