from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)
from stdnum import imo

from contracts.identifiers import CountryCode, IsoDateTime, OpaqueRef, UnLocode, Uscc, Vin

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _imo(value: str) -> str:
    if not imo.is_valid(value):
        raise ValueError("imo_number: 7 digits with a valid check digit, e.g. 'IMO 9074729'")
    return str(imo.compact(value))


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerCreate(_In):
    name: Text
    customs_code: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Z]{10}$")
    ]
    enterprises: list[Uscc] = Field(min_length=1, max_length=1000)


class BrokerCreated(BaseModel):
    id: str
    name: str
    secret: str = Field(description="Standard Webhooks signing secret (whsec_...), shown once.")


class DeclarationLodged(_In):
    declaration_no: OpaqueRef
    vin: Vin
    enterprise_uscc: Uscc
    export_licence_no: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None
    ) = None
    certificate_no: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None
    ) = None
    port_of_loading: UnLocode
    destination_country: CountryCode
    after_sales_letter_ref: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None
    ) = None
    declared_at: IsoDateTime


class DeclarationReleased(_In):
    declaration_no: OpaqueRef
    released_at: IsoDateTime


class DeclarationWithdrawn(_In):
    declaration_no: OpaqueRef
    reason: Text


class ShipmentDeparted(_In):
    declaration_no: OpaqueRef
    bill_of_lading: OpaqueRef
    vessel_name: Text
    vessel_imo: Annotated[str, AfterValidator(_imo)]
    port_of_loading: UnLocode
    departed_at: IsoDateTime


class LodgedMessage(_In):
    type: Literal["declaration.lodged"]
    timestamp: datetime
    data: DeclarationLodged


class ReleasedMessage(_In):
    type: Literal["declaration.released"]
    timestamp: datetime
    data: DeclarationReleased


class WithdrawnMessage(_In):
    type: Literal["declaration.withdrawn"]
    timestamp: datetime
    data: DeclarationWithdrawn


class DepartedMessage(_In):
    type: Literal["shipment.departed"]
    timestamp: datetime
    data: ShipmentDeparted


WebhookMessage = Annotated[
    LodgedMessage | ReleasedMessage | WithdrawnMessage | DepartedMessage,
    Field(discriminator="type"),
]


class WebhookAccepted(BaseModel):
    webhook_id: str
    type: str
    declaration_no: str
    status: str
    reasons: list[str]


class DeclarationPublic(BaseModel):
    declaration_no: str
    vin: str
    enterprise_uscc: str
    status: Literal["pending", "accepted", "rejected", "released", "exported", "withdrawn"]
    reasons: list[str]
    reason_details: dict[str, str]
    declared_at: datetime = Field(description="The broker's claim, kept; never judged.")
    received_at: datetime = Field(
        validation_alias=AliasChoices("received_at", "lodged_at"),
        description="When customs received the lodging: the moment the gates judged.",
    )
    policy_version: str | None = Field(description="The customs policy that decided it.")
    decided_at: datetime | None
    released_at: datetime | None
    departed_at: datetime | None


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret (whsec_...), shown once.")
    previous_secrets_valid_until: datetime


WebhookType = Literal[
    "declaration.accepted",
    "declaration.rejected",
    "vehicle.exported",
    "vehicle.departure-refused",
    "vehicle.inspected",
    "enterprise.status-changed",
]


class SubscriptionCreate(_In):
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2000)]
    event_types: list[WebhookType] = Field(min_length=1, max_length=10)
    enterprises: list[Uscc] | None = Field(default=None, max_length=1000)


class SubscriptionUpdate(_In):
    url: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2000)]
        | None
    ) = None
    event_types: list[WebhookType] | None = Field(default=None, min_length=1, max_length=10)
    enterprises: list[Uscc] | None = Field(default=None, max_length=1000)
    status: Literal["active", "disabled"] | None = None


class SubscriptionPublic(BaseModel):
    id: str
    url: str
    event_types: list[str]
    enterprises: list[str] | None
    status: str
    disabled_reason: str | None
    created_at: datetime


class SubscriptionCreated(SubscriptionPublic):
    secret: str = Field(description="Signing secret (whsec_...), shown once.")


class AttemptPublic(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: float


class DeliveryPublic(BaseModel):
    id: str = Field(description="The webhook-id, stable across attempts.")
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[AttemptPublic]
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class ReplayRequest(_In):
    since: IsoDateTime | None = Field(
        default=None, description="Re-send every failed delivery created since then (all if null)."
    )


class ReplayResult(BaseModel):
    queued: int
