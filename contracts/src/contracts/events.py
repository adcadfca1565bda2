"""Event payloads (the CloudEvents ``data``), one model per topic.

Producers validate strictly (``extra="forbid"``); consumers read tolerantly through
``parse_data``, which ignores fields added later (additive changes keep the version).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.identifiers import CountryCode, OpaqueRef, UnLocode, Uscc, Vin

EnterpriseStatus = Literal[
    "applied", "admitted", "warned", "suspended", "exited", "rejected", "expired"
]
Tier = Literal["good", "warning", "suspension", "exit"]
GOOD_STANDING: frozenset[str] = frozenset({"admitted", "warned"})
"""DOMAIN.md §3: the statuses whose enterprises may register vehicles, have them inspected,
declare, release and export them: one definition for every service."""


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]

    enterprise_uscc: Uscc

    @property
    def subject(self) -> str:
        """CloudEvents ``subject``: the VIN for vehicle events, else the USCC."""
        vin = getattr(self, "vin", None)
        return vin if isinstance(vin, str) else self.enterprise_uscc


class VehicleRegistered(EventData):
    TYPE = "vehicle.registered"
    TOPIC = topics.VEHICLE_REGISTERED

    vin: Vin
    make: str
    model: str
    model_year: int
    first_registration_date: date
    mileage_km: int = Field(ge=0)
    registration_certificate_no: str | None = None
    engine_no: str | None = None
    fuel_type: str | None = None
    hs_code: str | None = None
    destination_country: CountryCode | None = None
    transfer_endorsed_on: date | None = None
    registered_at: datetime


class InspectionItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    result: Literal["pass", "fail", "not_applicable"]
    severity: Literal["critical", "major", "minor"]
    note: str | None = None


class VehicleInspected(EventData):
    TYPE = "vehicle.inspected"
    TOPIC = topics.VEHICLE_INSPECTED

    inspection_id: str
    vin: Vin
    station_id: str
    inspected_at: datetime
    odometer_km: int = Field(ge=0)
    verdict: Literal["pass", "fail"]
    first_inspection: bool
    items: list[InspectionItem]
    failed_items: list[str]
    fraud_signals: list[str] = []
    certificate_no: str | None = None
    valid_until: date | None = None
    policy_version: str | None = None
    """The inspection policy (severities, validity) the verdict was decided by."""
    received_at: datetime | None = None
    """When the service received the report (``inspected_at`` is the station's claim)."""


class CertificateRevoked(EventData):
    """An export certificate withdrawn by the admin; ``forged`` marks a confirmed forgery."""

    TYPE = "vehicle.certificate-revoked"
    TOPIC = topics.CERTIFICATE_REVOKED

    certificate_no: str
    vin: Vin
    inspection_id: str
    reason: str
    forged: bool
    revoked_at: datetime


class _DeclarationEvent(EventData):
    """What customs did with one declaration: its number (the broker's) and the VIN it is for
    come first in each of these events."""

    declaration_no: OpaqueRef
    vin: Vin


class VehicleDeclared(_DeclarationEvent):
    TYPE = "vehicle.declared"
    TOPIC = topics.VEHICLE_DECLARED

    broker_id: str
    outcome: Literal["accepted", "rejected"]
    reasons: list[str] = []
    export_licence_no: str | None = None
    certificate_no: str | None = None
    port_of_loading: UnLocode
    destination_country: CountryCode
    declared_at: datetime
    """The broker's claim; the gates judged ``received_at``."""
    received_at: datetime | None = None
    """When customs received the lodging: the moment the gates are judged at."""
    policy_version: str | None = None


class VehicleExported(_DeclarationEvent):
    TYPE = "vehicle.exported"
    TOPIC = topics.VEHICLE_EXPORTED

    bill_of_lading: OpaqueRef
    vessel_name: str
    vessel_imo: str
    port_of_loading: UnLocode
    departed_at: datetime


class DepartureRefused(_DeclarationEvent):
    """A release or departure customs refused: no accepted and released declaration, the VIN
    exported already, or a gate re-checked at the step failed (standing, certificate revoked or
    expired). Attempts to export unqualified cars are what the assessment must see."""

    TYPE = "vehicle.departure-refused"
    TOPIC = topics.DEPARTURE_REFUSED

    broker_id: str
    reason: str
    """The first of ``reasons`` (kept for consumers of the first version)."""
    reasons: list[str] = []
    step: Literal["release", "departure"] = "departure"
    declaration_status: str
    bill_of_lading: str | None = None
    refused_at: datetime


class ComplaintFiled(EventData):
    TYPE = "enterprise.complaint-filed"
    TOPIC = topics.COMPLAINT_FILED

    complaint_id: str
    vin: Vin | None = None
    country: CountryCode
    category: str
    filed_at: datetime


class ComplaintResolved(EventData):
    TYPE = "enterprise.complaint-resolved"
    TOPIC = topics.COMPLAINT_RESOLVED

    complaint_id: str
    resolved_at: datetime


class EnterpriseStatusChanged(EventData):
    TYPE = "enterprise.status-changed"
    TOPIC = topics.STATUS_CHANGED

    from_status: EnterpriseStatus | None = Field(alias="from")
    to_status: EnterpriseStatus = Field(alias="to")
    actor: Literal["admin", "official", "policy", "system"]
    """``official``: a named official's decision (``official_id``); ``admin`` is how decisions
    before named officials were recorded."""
    reason: str
    cause: str | None = None
    changed_at: datetime
    official_id: str | None = None


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    weight: float


class EnterpriseAssessed(EventData):
    TYPE = "enterprise.assessed"
    TOPIC = topics.ASSESSED

    score: float
    tier: Tier
    previous_tier: Tier | None = None
    components: dict[str, Component]
    recommended_action: Literal["none", "warn", "suspend", "exit", "reinstate"]
    causes: list[str]
    policy_version: str
    assessed_at: datetime
    exit_rule: str | None = None
    """The immediate-exit rule that fired (e.g. ``forged_inspection``): such an exit applies
    from any status but ``exited``."""


EVENT_TYPES: tuple[type[EventData], ...] = (
    VehicleRegistered,
    VehicleInspected,
    CertificateRevoked,
    VehicleDeclared,
    VehicleExported,
    DepartureRefused,
    ComplaintFiled,
    ComplaintResolved,
    EnterpriseStatusChanged,
    EnterpriseAssessed,
)
BY_TYPE: dict[str, type[EventData]] = {m.TYPE: m for m in EVENT_TYPES}
BY_TOPIC: dict[str, type[EventData]] = {m.TOPIC: m for m in EVENT_TYPES}
