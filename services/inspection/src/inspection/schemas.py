from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from contracts.identifiers import IsoDate, IsoDateTime, Vin
from contracts.inputs import Province, RequestBody, Text


class StationCreate(RequestBody):
    name: Text
    accreditation: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^(CMA|CNAS)[ -]?[A-Z0-9]{4,30}$")
    ] = Field(description="CMA or CNAS accreditation number, e.g. CNAS L1234")
    province: Province
    accreditation_valid_until: IsoDate


class StationCreated(BaseModel):
    id: str
    name: str
    key_id: str
    api_key: str = Field(description="The station's API key, shown once.")


class KeyCreated(BaseModel):
    key_id: str
    api_key: str = Field(description="The new key, shown once.")
    previous_keys_valid_until: datetime = Field(
        description="Older keys keep working until then (24 h), unless revoked."
    )


class StationKeyPublic(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class StationStatusChange(RequestBody):
    status: Literal["active", "suspended"]
    reason: Text


class StationPublic(BaseModel):
    id: str
    name: str
    accreditation: str
    province: str
    accreditation_valid_until: IsoDate
    status: str


class CertificateRevoke(RequestBody):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    forged: bool = Field(
        default=False, description="A confirmed forgery: scoring counts it as a severe violation."
    )


class CertificatePublic(BaseModel):
    certificate_no: str
    status: Literal["valid", "expired", "revoked", "not_found"]
    vin: str | None = None
    make: str | None = None
    model: str | None = None
    model_year: int | None = None
    inspected_at: datetime | None = None
    valid_until: date | None = None
    key_id: str = Field(description="Which public key verifies ``signature``.")
    signature: str = Field(
        description="Ed25519 over the canonical JSON (sorted keys, no spaces, UTF-8) of every "
        "other non-null field of this object (all but key_id and signature); base64."
    )


class PublicKey(BaseModel):
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str = Field(description="Raw 32-byte public key, base64.")
    pem: str


class ItemIn(RequestBody):
    code: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, max_length=64)]
    result: Literal["pass", "fail", "not_applicable"]
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class InspectionCreate(RequestBody):
    vin: Vin
    inspected_at: IsoDateTime = Field(
        description="When the station inspected the vehicle (kept as its claim). Refused (422 "
        "time_out_of_range) if further ahead of the server's clock than the allowed skew, "
        "older than the policy's posting limit, or (rule inspected_before_transfer_endorsement) "
        "dated before the vehicle's transfer endorsement."
    )
    odometer_km: int = Field(ge=0, le=5_000_000)
    items: list[ItemIn] = Field(max_length=100)
    photos: list[Annotated[str, StringConstraints(max_length=2000)]] = Field(
        default_factory=list, max_length=50
    )
    inspector: Text | None = None


class FailedItem(BaseModel):
    code: str
    severity: str


class InspectionPublic(BaseModel):
    id: str
    vin: str
    verdict: Literal["pass", "fail"]
    first_inspection: bool
    certificate_no: str | None
    valid_until: date | None
    failed_items: list[FailedItem]
    remarks: list[str]
    fraud_signals: list[str]
    inspected_at: datetime
    """The station's claim, within the time bounds."""
    received_at: datetime
    """The server's time when the report arrived."""
    policy_version: str
    """The inspection policy the verdict was decided by."""
