from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.identifiers import IsoDateTime, Uscc


class ComponentPublic(BaseModel):
    value: float = Field(description="0-1, after the prior for small samples")
    weight: float
    observed_rate: float = Field(description="the rate observed in the window, before the prior")
    numerator: float
    denominator: float


class ExitRulePublic(BaseModel):
    rule: str = Field(
        description="forged_inspection | same_vin_exported_twice | exported_while_suspended | "
        "exported_while_exited | two_suspensions_in_window"
    )
    event_id: str
    at: str


class Window(BaseModel):
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    model_config = ConfigDict(populate_by_name=True)


class AssessmentPublic(BaseModel):
    uscc: str
    score: float
    tier: str
    raw_tier: str = Field(description="the tier the score alone gives, before hysteresis/exits")
    components: dict[str, ComponentPublic]
    exit_rules: list[ExitRulePublic]
    vehicles: int
    exports: int
    events_counted: int
    events_by_type: dict[str, int]
    policy_version: str
    window: Window
    updated_at: datetime
    causes: list[str] = Field(description="the newest event ids that moved any component")
    causes_by_component: dict[str, list[str]]


class AssessmentChangePublic(BaseModel):
    event_id: str = Field(description="the enterprise.assessed event")
    score: float
    tier: str
    previous_tier: str | None
    recommended_action: str
    components: dict[str, Any]
    exit_rules: list[dict[str, str]]
    causes: list[str]
    policy_version: str
    assessed_at: datetime


class ComponentExplained(BaseModel):
    value: float
    weight: float
    points: float = Field(description="value x weight: this component's share of the score")
    observed_rate: float
    numerator: float
    denominator: float
    prior_applied: bool
    numerator_events: list[str]
    denominator_events: list[str]
    what_would_move_it: list[dict[str, Any]]


class Explanation(BaseModel):
    uscc: str
    score: float
    tier: str
    policy_version: str
    window: Window
    vehicles: int
    components: dict[str, ComponentExplained]
    exit_rules: list[ExitRulePublic]
    tier_boundaries: dict[str, float] = Field(
        description="score needed to move up (with hysteresis) and below which it moves down"
    )


class HypotheticalEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal[
        "vehicle.registered",
        "vehicle.inspected",
        "vehicle.certificate-revoked",
        "vehicle.declared",
        "vehicle.exported",
        "vehicle.departure-refused",
        "enterprise.complaint-filed",
        "enterprise.complaint-resolved",
        "enterprise.status-changed",
    ]
    data: dict[str, Any] = Field(
        description="the event's data as its topic carries it; enterprise_uscc may be omitted"
    )
    time: IsoDateTime | None = Field(None, description="when it happens; default now")


class WhatIf(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[HypotheticalEvent] = Field(min_length=1, max_length=1000)


class WhatIfResult(BaseModel):
    uscc: str
    current_score: float | None
    current_tier: str | None
    score: float
    tier: str
    score_change: float | None
    recommended_action: str
    components: dict[str, ComponentPublic]
    exit_rules: list[ExitRulePublic]


class Ranked(BaseModel):
    uscc: str
    province: str
    score: float
    tier: str
    exports: int
    updated_at: datetime


class Percentile(BaseModel):
    uscc: str
    score: float
    exports: int
    peer_group: str = Field(description="enterprises with a similar export volume in the window")
    peers: int
    percentile: float = Field(description="share of peers scoring lower, ties counted half, 0-100")


class RescoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uscc: Uscc | None = Field(None, description="one enterprise; all when omitted")


class RescoreJobPublic(BaseModel):
    id: str
    uscc: str | None
    status: Literal["running", "done", "failed"]
    total: int
    done: int
    changed: int
    policy_version: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


class LedgerVerification(BaseModel):
    ok: bool
    entries_checked: int
    broken_enterprises: list[str]
