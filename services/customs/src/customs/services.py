"""Customs use cases: the only place a transaction opens."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from contracts import events
from contracts.envelope import new_event
from customs import domain, vault
from customs.models import (
    Broker,
    BrokerEnterprise,
    Declaration,
    KnownVehicle,
    LatestInspection,
)
from customs.schemas import (
    BrokerCreate,
    DeclarationLodged,
    DeclarationReleased,
    DeclarationWithdrawn,
    DepartedMessage,
    LodgedMessage,
    ReleasedMessage,
    ShipmentDeparted,
    WebhookAccepted,
    WithdrawnMessage,
)
from customs.settings import Settings
from servicekit import outbox, standing, tracing
from servicekit.problems import Conflict, Forbidden, NotFound, Unauthorized

SOURCE = "ucx/customs"


def create_broker(session: Session, settings: Settings, data: BrokerCreate) -> tuple[Broker, str]:
    secret = vault.new_signing_secret()
    try:
        with session.begin():
            broker = Broker(
                id=str(uuid.uuid4()),
                name=data.name,
                customs_code=data.customs_code,
                secret_encrypted=vault.seal(secret, settings.secret_key),
                created_at=datetime.now(UTC),
            )
            session.add(broker)
            session.flush()
            for uscc in sorted(set(data.enterprises)):
                session.add(BrokerEnterprise(broker_id=broker.id, uscc=uscc))
    except IntegrityError as exc:
        raise Conflict(
            "broker-exists", f"A broker with customs code {data.customs_code} is registered."
        ) from exc
    return broker, secret


def verify_webhook(
    session: Session, settings: Settings, broker_id: str, body: bytes, headers: dict[str, str]
) -> Broker:
    """Standard Webhooks signature over the raw body; 5 minutes' timestamp tolerance."""
    broker = session.get(Broker, broker_id)
    if broker is None:
        raise Unauthorized("invalid-signature", "Unknown broker or invalid signature.")
    try:
        Webhook(vault.unseal(broker.secret_encrypted, settings.secret_key)).verify(
            body, headers, json_parse=False
        )
    except Exception as exc:
        raise Unauthorized("invalid-signature", f"Webhook not verified: {exc}") from exc
    return broker


Message = LodgedMessage | ReleasedMessage | WithdrawnMessage | DepartedMessage


def handle_message(
    session: Session, settings: Settings, broker: Broker, webhook_id: str, message: Message
) -> WebhookAccepted:
    with session.begin():
        if isinstance(message, LodgedMessage):
            declaration = _lodge(session, settings, broker, message.data)
        elif isinstance(message, ReleasedMessage):
            declaration = _release(session, broker, message.data)
        elif isinstance(message, WithdrawnMessage):
            declaration = _withdraw(session, broker, message.data)
        else:
            assert isinstance(message, DepartedMessage)
            declaration = _depart(session, broker, message.data)
    return WebhookAccepted(
        webhook_id=webhook_id,
        type=message.type,
        declaration_no=declaration.declaration_no,
        status=declaration.status,
        reasons=declaration.reasons,
    )


def _acts_for(session: Session, broker: Broker, uscc: str) -> None:
    if session.get(BrokerEnterprise, (broker.id, uscc)) is None:
        raise Forbidden(
            "broker-not-authorised",
            f"Broker {broker.name} does not act for enterprise {uscc}.",
        )


def _lodge(
    session: Session, settings: Settings, broker: Broker, data: DeclarationLodged
) -> Declaration:
    _acts_for(session, broker, data.enterprise_uscc)
    if session.get(Declaration, data.declaration_no) is not None:
        raise Conflict(
            "declaration-exists", f"Declaration {data.declaration_no} was lodged already."
        )
    declaration = Declaration(
        **data.model_dump(),
        broker_id=broker.id,
        status="pending",
        reasons=[],
        reason_details={},
        lodged_at=datetime.now(UTC),
    )
    session.add(declaration)
    decide_if_possible(session, settings, declaration, force=False)
    return declaration


def decide_if_possible(
    session: Session, settings: Settings, declaration: Declaration, *, force: bool
) -> bool:
    """Decide a pending declaration now, unless a vehicle or inspection event may still be
    on its way (then it stays pending; ``force`` decides with what is known)."""
    vehicle_row = session.get(KnownVehicle, declaration.vin)
    inspection_row = session.get(LatestInspection, declaration.vin)
    vehicle = (
        domain.VehicleFacts(
            vehicle_row.enterprise_uscc, vehicle_row.first_registration_date, vehicle_row.exported
        )
        if vehicle_row
        else None
    )
    inspection = (
        domain.InspectionFacts(
            inspection_row.verdict,
            inspection_row.certificate_no,
            inspection_row.valid_until,
            inspection_row.revoked,
        )
        if inspection_row
        else None
    )
    if not force and domain.must_wait(vehicle, inspection):
        return False
    decision = domain.decide(
        domain.Lodged(
            vin=declaration.vin,
            enterprise_uscc=declaration.enterprise_uscc,
            certificate_no=declaration.certificate_no,
            export_licence_no=declaration.export_licence_no,
            after_sales_letter_ref=declaration.after_sales_letter_ref,
            declared_at=declaration.declared_at,
        ),
        vehicle=vehicle,
        standing=standing.status_of(session, declaration.enterprise_uscc),
        inspection=inspection,
        letter_required_from=date.fromisoformat(settings.after_sales_letter_from),
        letter_max_age_days=settings.after_sales_letter_max_age_days,
    )
    declaration.status = decision.outcome
    declaration.reasons = decision.reasons
    declaration.reason_details = decision.details
    declaration.decided_at = datetime.now(UTC)
    outbox.add(
        session,
        new_event(
            events.VehicleDeclared(
                enterprise_uscc=declaration.enterprise_uscc,
                declaration_no=declaration.declaration_no,
                vin=declaration.vin,
                broker_id=declaration.broker_id,
                outcome=decision.outcome,
                reasons=decision.reasons,
                export_licence_no=declaration.export_licence_no,
                certificate_no=declaration.certificate_no,
                port_of_loading=declaration.port_of_loading,
                destination_country=declaration.destination_country,
                declared_at=declaration.declared_at,
            ),
            source=SOURCE,
            trace_id=tracing.current_trace_id(),
        ),
    )
    return True


def _declaration_for(session: Session, broker: Broker, declaration_no: str) -> Declaration:
    declaration = session.get(Declaration, declaration_no, with_for_update=True)
    if declaration is None:
        raise NotFound("declaration-not-found", f"No declaration {declaration_no} was lodged.")
    _acts_for(session, broker, declaration.enterprise_uscc)
    return declaration


def _require_status(declaration: Declaration, allowed: set[str], doing: str) -> None:
    if declaration.status not in allowed:
        raise Conflict(
            "declaration-state",
            f"Cannot {doing} declaration {declaration.declaration_no}: it is {declaration.status}.",
            declaration_status=declaration.status,
        )


def _release(session: Session, broker: Broker, data: DeclarationReleased) -> Declaration:
    declaration = _declaration_for(session, broker, data.declaration_no)
    _require_status(declaration, {"accepted"}, "release")
    declaration.status = "released"
    declaration.released_at = data.released_at
    return declaration


def _withdraw(session: Session, broker: Broker, data: DeclarationWithdrawn) -> Declaration:
    declaration = _declaration_for(session, broker, data.declaration_no)
    _require_status(declaration, {"pending", "accepted"}, "withdraw")
    declaration.status = "withdrawn"
    return declaration


def _depart(session: Session, broker: Broker, data: ShipmentDeparted) -> Declaration:
    declaration = _declaration_for(session, broker, data.declaration_no)
    _require_status(declaration, {"released"}, "export under")
    vehicle = session.get(KnownVehicle, declaration.vin, with_for_update=True)
    if vehicle is None or vehicle.exported:
        raise Conflict("already-exported", f"Vehicle {declaration.vin} was exported already.")
    vehicle.exported = True
    declaration.status = "exported"
    declaration.bill_of_lading = data.bill_of_lading
    declaration.vessel_name = data.vessel_name
    declaration.vessel_imo = data.vessel_imo
    declaration.departed_at = data.departed_at
    outbox.add(
        session,
        new_event(
            events.VehicleExported(
                enterprise_uscc=declaration.enterprise_uscc,
                declaration_no=declaration.declaration_no,
                vin=declaration.vin,
                bill_of_lading=data.bill_of_lading,
                vessel_name=data.vessel_name,
                vessel_imo=data.vessel_imo,
                port_of_loading=data.port_of_loading,
                departed_at=data.departed_at,
            ),
            source=SOURCE,
            trace_id=tracing.current_trace_id(),
        ),
    )
    return declaration


def get_declaration(session: Session, declaration_no: str) -> Declaration:
    declaration = session.get(Declaration, declaration_no)
    if declaration is None:
        raise NotFound("declaration-not-found", f"No declaration {declaration_no} was lodged.")
    return declaration


def pending_for_vin(session: Session, vin: str) -> list[Declaration]:
    return list(
        session.scalars(
            select(Declaration).where(Declaration.vin == vin, Declaration.status == "pending")
        )
    )


def decide_overdue(session: Session, settings: Settings, now: datetime) -> int:
    """Pending declarations past the timeout are decided with what is known."""
    cutoff = now - timedelta(seconds=settings.pending_timeout_s)
    overdue = session.scalars(
        select(Declaration).where(Declaration.status == "pending", Declaration.lodged_at <= cutoff)
    ).all()
    for declaration in overdue:
        decide_if_possible(session, settings, declaration, force=True)
    return len(overdue)
