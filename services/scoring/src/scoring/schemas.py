from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ComponentPublic(BaseModel):
    value: float
    weight: float
    observed_rate: float | None = None


class AssessmentPublic(BaseModel):
    uscc: str
    score: float
    tier: str
    components: dict[str, ComponentPublic]
    events_counted: int
    events_by_type: dict[str, int]
    policy_version: str
    updated_at: datetime
    causes: list[str]
