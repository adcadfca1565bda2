from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from contracts.identifiers import CountryCode, HsCode, IsoDate, OpaqueRef, Uscc, Vin
from contracts.inputs import Province, RequestBody, Text

LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class EnterpriseCreate(RequestBody):
    uscc: Uscc
    name: Text
    kind: Literal["manufacturer", "dealer"]
    province: Province = Field(description="6-digit province admin division code, e.g. 350000")
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    appraiser_count: int = Field(ge=0, le=100_000)
    contact: Text


class EnterprisePublic(BaseModel):
    uscc: str
    name: str
    kind: str
    province: str
    address: str
    appraiser_count: int
    contact: str
    status: str
    admission_valid_until: date | None
    recommended: str | None = Field(
        default=None,
        description="The latest assessment recommendation not applied since the last status "
        "change: refused by the status machine, or (reinstate) awaiting the regulator.",
    )
    applied_at: datetime
    updated_at: datetime


class DecisionCreate(RequestBody):
    action: Literal["approve", "reject", "renew", "warn", "suspend", "reinstate", "exit"]
    reason: LongText


class DecisionPublic(EnterprisePublic):
    api_key: str | None = Field(
        default=None, description="Only on approve: the enterprise's API key, shown once."
    )


class StatusChangePublic(BaseModel):
    """One entry of the enterprise's history: a status change, or an assessment's
    recommendation the registry did not apply (``outcome``)."""

    event_id: str | None = Field(
        description="The enterprise.status-changed event; null for a recommendation not applied."
    )
    from_status: str | None
    to_status: str
    action: str
    actor: Literal["admin", "official", "policy", "system"]
    official_id: str | None = Field(
        default=None,
        description="The official who decided (actor official): a principal's id, "
        "oidc:<subject>, or break-glass.",
    )
    official_name: str | None = None
    reason: str
    cause: str | None = Field(description="The event that caused it (an assessment), if any.")
    changed_at: datetime
    outcome: Literal["applied", "refused", "awaiting_regulator"] = Field(
        default="applied",
        description="applied: the status changed; refused: the status machine (or a later "
        "decision of the regulator) did not allow the recommendation; awaiting_regulator: "
        "reinstatement from suspended, the regulator's decision.",
    )
    policy_version: str | None = Field(
        default=None, description="The registry policy the decision was taken under."
    )


class VehicleCreate(RequestBody):
    vin: Vin
    enterprise_uscc: Uscc
    make: Text
    model: Text
    model_year: int = Field(ge=1980, le=2100)
    first_registration_date: IsoDate
    registration_certificate_no: OpaqueRef
    engine_no: OpaqueRef
    mileage_km: int = Field(ge=0, le=5_000_000)
    fuel_type: Literal["petrol", "diesel", "hybrid", "phev", "bev", "fcev", "lpg", "cng", "other"]
    hs_code: HsCode
    destination_country: CountryCode
    transfer_endorsed_on: IsoDate


class VehiclePublic(BaseModel):
    vin: str
    enterprise_uscc: str
    make: str
    model: str
    model_year: int
    first_registration_date: date
    registration_certificate_no: str
    engine_no: str
    mileage_km: int
    fuel_type: str
    hs_code: str
    destination_country: str
    transfer_endorsed_on: date
    stage: str
    registered_at: datetime
    warnings: list[str] = Field(
        default_factory=list,
        description="Advisory findings, e.g. vin_check_digit for a foreign VIN.",
    )


class VehicleBatch(RequestBody):
    vehicles: list[dict[str, Any]] = Field(min_length=1, max_length=500)


class BatchRow(BaseModel):
    index: int
    vin: str | None
    status: Literal["created", "rejected"]
    errors: list[dict[str, str]] = []
    warnings: list[str] = []


class BatchResult(BaseModel):
    created: int
    rejected: int
    results: list[BatchRow]


class TimelineEvent(BaseModel):
    id: str
    type: str
    source: str
    time: datetime
    summary: str


class TimelinePublic(BaseModel):
    vin: str
    stage: str
    events: list[TimelineEvent]


class ComplaintCreate(RequestBody):
    vin: Vin | None = None
    country: CountryCode
    category: Literal["no_spare_parts", "warranty_refused", "misrepresented_condition", "other"]
    description: LongText


class ComplaintResolve(RequestBody):
    resolution: LongText


class ComplaintPublic(BaseModel):
    id: str
    uscc: str
    vin: str | None
    country: str
    category: str
    description: str
    status: Literal["open", "resolved"]
    filed_at: datetime
    resolved_at: datetime | None
    resolution: str | None
