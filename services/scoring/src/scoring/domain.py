"""The assessment as pure functions of (policy, events): ``fold`` one event into a running
tally, ``assess`` a tally. Replaying the ledger through ``replay`` gives exactly what the live
worker stores, because the worker applies the very same steps per event, in ledger order.

Not yet here (issue #6): the rolling 365-day window, complaints, the two-suspensions rule
and the immediate-exit violations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from contracts import events
from scoring.policy import Policy

MAX_CAUSES = 20


class Tally(BaseModel):
    """The running state of one enterprise: everything ``assess`` needs, nothing else."""

    vehicles: int = 0
    first_inspections: int = 0
    first_inspection_fails: float = 0
    violations: int = 0
    declarations: int = 0
    gate_rejections: int = 0
    exports: int = 0
    complaints: float = 0
    events_counted: int = 0
    by_type: dict[str, int] = Field(default_factory=dict)
    causes: dict[str, list[str]] = Field(default_factory=dict)
    tier: str | None = None


@dataclass(frozen=True)
class Assessment:
    score: float
    tier: str
    components: dict[str, dict[str, float]]
    causes: list[str]


def _cause(tally: Tally, component: str, event_id: str) -> None:
    ids = tally.causes.setdefault(component, [])
    if event_id not in ids:
        ids.append(event_id)
        ids.sort()  # uuid7 ids sort by time: keep the newest, whatever the arrival order
        del ids[:-MAX_CAUSES]


def fold(policy: Policy, tally: Tally, event_id: str, type_: str, data: Mapping[str, Any]) -> Tally:
    """One event into the tally (a new tally; the input is not changed)."""
    t = tally.model_copy(deep=True)
    t.events_counted += 1
    t.by_type[type_] = t.by_type.get(type_, 0) + 1
    c = policy.components
    if type_ == events.VehicleRegistered.TYPE:
        t.vehicles += 1
        _cause(t, "activity", event_id)
    elif type_ == events.VehicleInspected.TYPE:
        if data.get("first_inspection"):
            t.first_inspections += 1
            _cause(t, "quality", event_id)
            if data.get("verdict") == "fail":
                damage = set(data.get("failed_items", [])) & c.quality.damage_items
                t.first_inspection_fails += c.quality.damage_fail_counts if damage else 1
        signals = set(data.get("fraud_signals", [])) & c.integrity.violation_signals
        if signals:
            t.violations += len(signals)
            _cause(t, "integrity", event_id)
    elif type_ == events.VehicleDeclared.TYPE:
        t.declarations += 1
        reasons = set(data.get("reasons", []))
        _cause(t, "gate_compliance", event_id)
        if reasons & c.gate_compliance.gate_reasons:
            t.gate_rejections += 1
        if reasons & c.integrity.violation_reasons:
            t.violations += 1
            _cause(t, "integrity", event_id)
    elif type_ == events.VehicleExported.TYPE:
        t.exports += 1
        _cause(t, "activity", event_id)
        _cause(t, "after_sales", event_id)
    t.tier = tier_for(policy, score_of(policy, t), t.tier)
    return t


def _shrunk(policy: Policy, observed: float, n: int) -> float:
    k = policy.prior.strength
    return (n * observed + k * policy.prior.value) / (n + k)


def _rate_component(policy: Policy, rate: float, tolerance: float, n: int) -> float:
    return _shrunk(policy, 1 - min(1.0, rate / tolerance), n)


def components_of(policy: Policy, t: Tally) -> dict[str, dict[str, float]]:
    c = policy.components
    n = t.vehicles
    quality_rate = t.first_inspection_fails / t.first_inspections if t.first_inspections else 0.0
    integrity_rate = t.violations / t.vehicles if t.vehicles else 0.0
    gate_rate = t.gate_rejections / t.declarations if t.declarations else 0.0
    after_sales_rate = 100 * t.complaints / t.exports if t.exports else 0.0
    return {
        "quality": {
            "value": _rate_component(policy, quality_rate, c.quality.tolerance, n),
            "weight": c.quality.weight,
            "observed_rate": quality_rate,
        },
        "integrity": {
            "value": _rate_component(policy, integrity_rate, c.integrity.tolerance, n),
            "weight": c.integrity.weight,
            "observed_rate": integrity_rate,
        },
        "gate_compliance": {
            "value": _rate_component(policy, gate_rate, c.gate_compliance.tolerance, n),
            "weight": c.gate_compliance.weight,
            "observed_rate": gate_rate,
        },
        "after_sales": {
            "value": _rate_component(policy, after_sales_rate, c.after_sales.tolerance, n),
            "weight": c.after_sales.weight,
            "observed_rate": after_sales_rate,
        },
        "activity": {"value": 1.0 if t.exports else 0.0, "weight": c.activity.weight},
    }


def score_of(policy: Policy, t: Tally) -> float:
    return round(sum(p["weight"] * p["value"] for p in components_of(policy, t).values()), 2)


def tier_for(policy: Policy, score: float, previous: str | None) -> str:
    """The tier for ``score``; moving back UP needs the boundary cleared by the hysteresis."""
    names = [name for name, _ in sorted(policy.tiers.items(), key=lambda kv: -kv[1])]
    raw = next(name for name in names if score >= policy.tiers[name])
    if previous not in names or names.index(raw) >= names.index(previous):
        return raw  # same or worse: no hysteresis on the way down
    for name in names[names.index(raw) : names.index(previous)]:
        if score >= policy.tiers[name] + policy.hysteresis:
            return name
    return previous


def assess(policy: Policy, t: Tally) -> Assessment:
    causes = sorted({e for ids in t.causes.values() for e in ids})
    score = score_of(policy, t)
    return Assessment(
        score, t.tier or tier_for(policy, score, None), components_of(policy, t), causes
    )


def replay(policy: Policy, history: Iterable[tuple[str, str, Mapping[str, Any]]]) -> Tally:
    """The pure function over a ledger: (event id, type, data) in ledger order, deduped."""
    tally = Tally()
    seen: set[str] = set()
    for event_id, type_, data in history:
        if event_id not in seen:
            seen.add(event_id)
            tally = fold(policy, tally, event_id, type_, data)
    return tally
