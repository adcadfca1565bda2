"""Customs use cases: the only place a transaction opens."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, Table, and_, bindparam, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from contracts import events
from customs import domain, vault
from customs import policy as customs_policy
from customs.models import (
    Base,
    Broker,
    BrokerEnterprise,
    BrokerSecret,
    Declaration,
    KnownVehicle,
    LatestInspection,
    RefusedDeparture,
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
    WebhookMessage,
    WithdrawnMessage,
)
from customs.settings import Settings
from servicekit import idempotency, outbox, standing
from servicekit.clock import Claimed, check_claims, civil_date, clock
from servicekit.problems import (
    PROBLEM_JSON,
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    Unauthorized,
    field_errors,
    problem_body,
)

SOURCE = "ucx/customs"


def create_broker(session: Session, settings: Settings, data: BrokerCreate) -> tuple[Broker, str]:
    secret = vault.new_signing_secret()
    now = clock.now()
    try:
        with session.begin():
            broker = Broker(
                id=str(uuid.uuid4()), name=data.name, customs_code=data.customs_code, created_at=now
            )
            session.add(broker)
            session.flush()
            session.add(_broker_secret(settings, broker.id, secret, now))
            for uscc in sorted(set(data.enterprises)):
                session.add(BrokerEnterprise(broker_id=broker.id, uscc=uscc))
    except IntegrityError as exc:
        raise Conflict(
            "broker-exists", f"A broker with customs code {data.customs_code} is registered."
        ) from exc
    return broker, secret


def _broker_secret(settings: Settings, broker_id: str, secret: str, now: datetime) -> BrokerSecret:
    return BrokerSecret(
        id=str(uuid.uuid4()),
        broker_id=broker_id,
        secret_encrypted=vault.seal(secret, settings.secret_key),
        created_at=now,
    )


def rotate_broker_secret(
    session: Session, settings: Settings, broker_id: str
) -> tuple[str, datetime]:
    """A new signing secret; the old ones keep verifying during the overlap window."""
    now = clock.now()
    until = now + timedelta(hours=settings.secret_overlap_hours)
    secret = vault.new_signing_secret()
    with session.begin():
        if session.get(Broker, broker_id) is None:
            raise NotFound("broker-not-found", f"No broker {broker_id}.")
        for old in session.scalars(
            select(BrokerSecret).where(
                BrokerSecret.broker_id == broker_id, BrokerSecret.expires_at.is_(None)
            )
        ):
            old.expires_at = until
        session.add(_broker_secret(settings, broker_id, secret, now))
    return secret, until


_UNSEALED: dict[str, str] = {}
"""Secret row id -> clear secret: a row's ciphertext never changes, so decrypting it once per
process is enough (Fernet costs ~15% of a webhook otherwise). Expiry is still read each time."""


class BrokerRef(NamedTuple):
    id: str
    name: str


_BROKERS, _SECRETS = cast(Table, Broker.__table__), cast(Table, BrokerSecret.__table__)
_ACTS_FOR_TABLE = cast(Table, BrokerEnterprise.__table__)
_VEHICLES, _INSPECTIONS = (
    cast(Table, KnownVehicle.__table__),
    cast(Table, LatestInspection.__table__),
)
_DECLARATIONS = cast(Table, Declaration.__table__)
# Core statements built once with bind parameters (the statement cache finds them as they
# are), run on the session's connection: the webhook hot path skips the ORM.
_BROKER_SECRETS = (
    select(_BROKERS.c.name, _SECRETS.c.id, _SECRETS.c.secret_encrypted, _SECRETS.c.expires_at)
    .join_from(_BROKERS, _SECRETS, _SECRETS.c.broker_id == _BROKERS.c.id, isouter=True)
    .where(_BROKERS.c.id == bindparam("broker_id"))
)
_ACTS_FOR = select(_ACTS_FOR_TABLE.c.uscc).where(
    _ACTS_FOR_TABLE.c.broker_id == bindparam("broker_id"),
    _ACTS_FOR_TABLE.c.uscc == bindparam("uscc"),
)
_VEHICLE = select(
    _VEHICLES.c.enterprise_uscc, _VEHICLES.c.first_registration_date, _VEHICLES.c.exported
).where(_VEHICLES.c.vin == bindparam("vin"))
_INSPECTION = select(
    _INSPECTIONS.c.verdict, _INSPECTIONS.c.certificate_no, _INSPECTIONS.c.valid_until,
    _INSPECTIONS.c.revoked,
).where(_INSPECTIONS.c.vin == bindparam("vin"))  # fmt: skip
_STANDING = Base.metadata.tables["enterprise_standing"]
_CLAIMED = select(_DECLARATIONS.c.declaration_no).where(
    or_(
        _DECLARATIONS.c.declaration_no == bindparam("declaration_no"),
        and_(
            _DECLARATIONS.c.vin == bindparam("vin"),
            _DECLARATIONS.c.status.in_(domain.OPEN_STATUSES),
        ),
    )
)
"""This number lodged already, or the VIN's open declaration: one round trip for both."""
_RECHECK = select(
    _INSPECTIONS.c.verdict, _INSPECTIONS.c.certificate_no, _INSPECTIONS.c.valid_until,
    _INSPECTIONS.c.revoked,
    select(_STANDING.c.status).where(_STANDING.c.uscc == bindparam("uscc"))
    .scalar_subquery().label("standing"),
).where(_INSPECTIONS.c.vin == bindparam("vin"))  # fmt: skip
"""The facts re-checked at release and departure, in one round trip."""
_INSERT_DECLARATION = insert(_DECLARATIONS)


def _unsealed(secret_id: str, sealed: bytes, settings: Settings) -> str:
    clear = _UNSEALED.get(secret_id)
    if clear is None:
        clear = vault.unseal(sealed, settings.secret_key)
        if len(_UNSEALED) > 10_000:
            _UNSEALED.clear()
        _UNSEALED[secret_id] = clear
    return clear


def verify_webhook(
    session: Session, settings: Settings, broker_id: str, body: bytes, headers: dict[str, str]
) -> BrokerRef:
    """Standard Webhooks signature over the raw body with any of the broker's live secrets;
    5 minutes' timestamp tolerance."""
    rows = session.connection().execute(_BROKER_SECRETS, {"broker_id": broker_id}).all()
    if not rows:
        raise Unauthorized("invalid-signature", "Unknown broker or invalid signature.")
    now = clock.now()
    secrets = [
        _unsealed(row.id, row.secret_encrypted, settings)
        for row in rows
        if row.id is not None and (row.expires_at is None or row.expires_at > now)
    ]
    error: Exception = ValueError("no live secret")
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return BrokerRef(broker_id, rows[0].name)
        except Exception as exc:  # noqa: BLE001 - every verification failure is the same 401
            error = exc
    raise Unauthorized("invalid-signature", f"Webhook not verified: {error}")


Message = LodgedMessage | ReleasedMessage | WithdrawnMessage | DepartedMessage


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    replayed: bool = False


_messages: TypeAdapter[WebhookMessage] = TypeAdapter(WebhookMessage)


def receive_webhook(
    session: Session, settings: Settings, broker_id: str, body: bytes, headers: dict[str, str]
) -> Answer:
    """A unit of work for the group-commit writer: verify, then either replay the answer
    remembered for this ``webhook-id`` or apply the message and remember its answer, in the
    SAME transaction as the effect (a crash loses both or neither)."""
    broker = verify_webhook(session, settings, broker_id, body, headers)
    scope, webhook_id = f"webhook:{broker.id}", headers["webhook-id"]
    stored = idempotency.stored_in(session, scope, webhook_id)
    if stored is not None and stored.status_code is not None:
        content_type = stored.content_type or "application/json"
        return Answer(stored.status_code, stored.body or b"", content_type, replayed=True)
    try:
        message = _messages.validate_json(body)
        status, payload = _apply_once_settled(session, settings, broker, webhook_id, message)
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        problem = Problem(
            "validation-error", detail, status=422, title="Invalid webhook message", errors=errors
        )
        status, payload = 422, problem_body(problem)
    except Problem as exc:
        status, payload = exc.status, problem_body(exc)
    content_type = "application/json" if status < 400 else PROBLEM_JSON
    answer = Answer(status, json.dumps(payload).encode(), content_type)
    idempotency.remember_in(
        session, scope, webhook_id, idempotency.digest(body), status, content_type, answer.body
    )
    return answer


def _apply_once_settled(
    session: Session, settings: Settings, broker: BrokerRef, webhook_id: str, message: Message
) -> tuple[int, dict[str, Any]]:
    """Apply in a savepoint (a refusal rolls back what the message began) and flush there, so
    a constraint violation is this message's own. The checks foresee every constraint; one can
    still fire when another connection committed the same VIN's lodging a moment earlier (the
    open-declaration index), so the message is judged once more against what is committed
    now. A violation that persists is a final 409, remembered like any answer: never a 500,
    never an answer the broker would retry forever."""
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                answer = _apply(session, settings, broker, webhook_id, message)
                session.flush()
            return answer
        except IntegrityError as exc:
            if attempt == 2:
                raise Conflict(
                    "constraint-violated",
                    f"{message.type} cannot be applied: it conflicts with a record customs "
                    f"holds ({_constraint_of(exc)}). Retrying it will not change that.",
                    constraint=_constraint_of(exc),
                ) from exc
    raise AssertionError("unreachable")


def _constraint_of(exc: IntegrityError) -> str:
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    return str(name) if name else str(exc.orig).splitlines()[0]


def _apply(
    session: Session, settings: Settings, broker: BrokerRef, webhook_id: str, message: Message
) -> tuple[int, dict[str, Any]]:
    refusal: Conflict | None = None
    if isinstance(message, LodgedMessage):
        declaration = _lodge(session, settings, broker, message.data)
    elif isinstance(message, ReleasedMessage):
        declaration, refusal = _release(session, settings, broker, message.data)
    elif isinstance(message, WithdrawnMessage):
        declaration = _withdraw(session, broker, message.data)
    else:
        declaration, refusal = _depart(session, settings, broker, message.data)
    if refusal is not None:  # recorded and emitted, and still refused
        return refusal.status, problem_body(refusal)
    accepted = WebhookAccepted(
        webhook_id=webhook_id,
        type=message.type,
        declaration_no=declaration.declaration_no,
        status=declaration.status,
        reasons=declaration.reasons,
    )
    return 202, accepted.model_dump(mode="json")


def _acts_for(session: Session, broker: BrokerRef, uscc: str) -> None:
    acts = session.connection().execute(_ACTS_FOR, {"broker_id": broker.id, "uscc": uscc})
    if acts.first() is None:
        raise Forbidden(
            "broker-not-authorised",
            f"Broker {broker.name} does not act for enterprise {uscc}.",
        )


def _policy(settings: Settings) -> customs_policy.CustomsPolicy:
    return customs_policy.load(settings.policy_version)


def _check_claim(
    settings: Settings,
    field: str,
    value: datetime,
    now: datetime,
    not_before: datetime | None = None,
    not_before_rule: str = "time_out_of_range",
) -> None:
    """A partner's claimed time, kept as its claim, accepted only within the policy's age
    and the allowed skew (422 ``time_out_of_range`` naming the field, nothing written)."""
    max_age = _policy(settings).claim_max_age_hours.of(field)
    check_claims(
        {f"data.{field}": Claimed(value, max_age, not_before, not_before_rule)},
        now=now,
        skew=timedelta(seconds=settings.clock_skew_s),
    )


def _lodge(
    session: Session, settings: Settings, broker: BrokerRef, data: DeclarationLodged
) -> Declaration:
    """Decided at once unless it must wait; inserted with Core once its outcome is known (the
    ORM object is only the holder the gates fill in). Judged at ``lodged_at``, the moment
    customs received it; ``declared_at`` is the broker's claim, bounded and kept."""
    _acts_for(session, broker, data.enterprise_uscc)
    received_at = clock.now()
    _check_claim(settings, "declared_at", data.declared_at, received_at)
    connection = session.connection()
    claimed = connection.execute(
        _CLAIMED, {"declaration_no": data.declaration_no, "vin": data.vin}
    ).scalars()
    open_declaration = None
    for declaration_no in claimed:
        if declaration_no == data.declaration_no:
            raise Conflict(
                "declaration-exists", f"Declaration {data.declaration_no} was lodged already."
            )
        open_declaration = declaration_no
    declaration = Declaration(
        **data.model_dump(),
        broker_id=broker.id,
        status="pending",
        reasons=[],
        reason_details={},
        lodged_at=received_at,
    )
    decide_if_possible(
        session, settings, declaration, force=False, open_declaration=open_declaration
    )
    connection.execute(
        _INSERT_DECLARATION, {c.key: getattr(declaration, c.key) for c in _DECLARATIONS.columns}
    )
    return declaration


def _inspection_facts(row: Any) -> domain.InspectionFacts | None:
    if row is None:
        return None
    return domain.InspectionFacts(row.verdict, row.certificate_no, row.valid_until, row.revoked)


def decide_if_possible(
    session: Session,
    settings: Settings,
    declaration: Declaration,
    *,
    force: bool,
    open_declaration: str | None = None,
) -> bool:
    """Decide a pending declaration now, unless a vehicle or inspection event may still be
    on its way and could make it acceptable (then it stays pending; ``force`` decides with
    what is known). ``open_declaration``: another open declaration of the VIN."""
    session.flush()  # a consumer's projection changes, for the Core reads below
    vehicle, inspection = _facts(session.connection(), declaration.vin)
    policy = _policy(settings)
    decision = domain.settle(
        _lodged_of(declaration),
        vehicle=vehicle,
        standing=standing.status_of(session, declaration.enterprise_uscc),
        inspection=inspection,
        open_declaration=open_declaration,
        policy=policy,
        force=force,
    )
    if decision is None:
        return False
    declaration.status = decision.outcome
    declaration.reasons = decision.reasons
    declaration.reason_details = decision.details
    declaration.decided_at = clock.now()
    declaration.policy_version = policy.version
    outbox.emit(session, _declared(declaration), source=SOURCE)
    return True


def _facts(
    connection: Connection, vin: str
) -> tuple[domain.VehicleFacts | None, domain.InspectionFacts | None]:
    """What customs knows of the vehicle and its latest inspection."""
    vehicle = connection.execute(_VEHICLE, {"vin": vin}).first()
    facts = (
        domain.VehicleFacts(
            vehicle.enterprise_uscc, vehicle.first_registration_date, vehicle.exported
        )
        if vehicle
        else None
    )
    return facts, _inspection_facts(connection.execute(_INSPECTION, {"vin": vin}).first())


def _lodged_of(declaration: Declaration) -> domain.Lodged:
    return domain.Lodged(
        vin=declaration.vin,
        enterprise_uscc=declaration.enterprise_uscc,
        certificate_no=declaration.certificate_no,
        export_licence_no=declaration.export_licence_no,
        after_sales_letter_ref=declaration.after_sales_letter_ref,
        received_at=declaration.lodged_at,
    )


def _declared(declaration: Declaration) -> events.VehicleDeclared:
    """The decision as an event, from the decided declaration."""
    return events.VehicleDeclared(
        enterprise_uscc=declaration.enterprise_uscc,
        declaration_no=declaration.declaration_no,
        vin=declaration.vin,
        broker_id=declaration.broker_id,
        outcome="accepted" if declaration.status == "accepted" else "rejected",
        reasons=declaration.reasons,
        export_licence_no=declaration.export_licence_no,
        certificate_no=declaration.certificate_no,
        port_of_loading=declaration.port_of_loading,
        destination_country=declaration.destination_country,
        declared_at=declaration.declared_at,
        received_at=declaration.lodged_at,
        policy_version=declaration.policy_version,
    )


def _declaration_for(session: Session, broker: BrokerRef, declaration_no: str) -> Declaration:
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


def _recheck(
    session: Session, settings: Settings, declaration: Declaration, received_at: datetime
) -> tuple[list[str], dict[str, str]]:
    """The gates that can turn after acceptance, judged on the day the step was received."""
    row = (
        session.connection()
        .execute(_RECHECK, {"vin": declaration.vin, "uscc": declaration.enterprise_uscc})
        .first()
    )
    status = row.standing if row else standing.status_of(session, declaration.enterprise_uscc)
    return domain.step_refusals(
        standing=status,
        inspection=_inspection_facts(row),
        certificate_no=declaration.certificate_no,
        received_on=civil_date(received_at),
        policy=_policy(settings),
    )


def _refuse(
    session: Session,
    broker: BrokerRef,
    declaration: Declaration,
    step: str,
    reasons: list[str],
    details: dict[str, str],
    bill_of_lading: str | None,
    now: datetime,
) -> Conflict:
    """Record and emit a refused release or departure: the assessment must see the attempt."""
    session.add(
        RefusedDeparture(
            id=str(uuid.uuid4()),
            declaration_no=declaration.declaration_no,
            vin=declaration.vin,
            enterprise_uscc=declaration.enterprise_uscc,
            reason=reasons[0],
            reasons=reasons,
            step=step,
            refused_at=now,
        )
    )
    outbox.emit(
        session,
        events.DepartureRefused(
            enterprise_uscc=declaration.enterprise_uscc,
            declaration_no=declaration.declaration_no,
            vin=declaration.vin,
            broker_id=broker.id,
            reason=reasons[0],
            reasons=reasons,
            step="release" if step == "release" else "departure",
            declaration_status=declaration.status,
            bill_of_lading=bill_of_lading,
            refused_at=now,
        ),
        source=SOURCE,
    )
    return Conflict(
        reasons[0].replace("_", "-"),
        f"{step.capitalize()} refused for declaration {declaration.declaration_no}: "
        f"{', '.join(reasons)} (declaration is {declaration.status}). The attempt is recorded.",
        step=step,
        reasons=reasons,
        reason_details=details,
        declaration_status=declaration.status,
    )


def _release(
    session: Session, settings: Settings, broker: BrokerRef, data: DeclarationReleased
) -> tuple[Declaration, Conflict | None]:
    """``released_at`` may not lie before the lodging's receipt (less the allowed skew: the
    broker's clock and ours may differ that much). Standing and certificate are re-checked."""
    declaration = _declaration_for(session, broker, data.declaration_no)
    now = clock.now()
    _check_claim(
        settings,
        "released_at",
        data.released_at,
        now,
        not_before=declaration.lodged_at - timedelta(seconds=settings.clock_skew_s),
        not_before_rule="released_before_lodged",
    )
    _require_status(declaration, {"accepted"}, "release")
    reasons, details = _recheck(session, settings, declaration, now)
    if reasons:
        return declaration, _refuse(
            session, broker, declaration, "release", reasons, details, None, now
        )
    declaration.status = "released"
    declaration.released_at = data.released_at
    return declaration, None


def _withdraw(session: Session, broker: BrokerRef, data: DeclarationWithdrawn) -> Declaration:
    declaration = _declaration_for(session, broker, data.declaration_no)
    _require_status(declaration, {"pending", "accepted"}, "withdraw")
    declaration.status = "withdrawn"
    return declaration


def _depart(
    session: Session, settings: Settings, broker: BrokerRef, data: ShipmentDeparted
) -> tuple[Declaration, Conflict | None]:
    """A departure needs a released declaration, a VIN not yet exported, and the gates that
    can turn after acceptance still holding (standing, certificate). ``departed_at`` may not
    lie before the claimed release."""
    declaration = _declaration_for(session, broker, data.declaration_no)
    now = clock.now()
    _check_claim(
        settings,
        "departed_at",
        data.departed_at,
        now,
        not_before=declaration.released_at,
        not_before_rule="departed_before_released",
    )
    vehicle = session.get(KnownVehicle, declaration.vin, with_for_update=True)
    details: dict[str, str] = {}
    reasons = domain.departure_prerequisites(
        exported=vehicle is not None and vehicle.exported, status=declaration.status
    )
    if not reasons:
        reasons, details = _recheck(session, settings, declaration, now)
    if reasons:
        return declaration, _refuse(
            session, broker, declaration, "departure", reasons, details, data.bill_of_lading, now
        )
    if vehicle is None:
        raise Conflict("vehicle-unknown", f"Vehicle {declaration.vin} is not known to customs.")
    vehicle.exported = True
    declaration.status = "exported"
    declaration.bill_of_lading = data.bill_of_lading
    declaration.vessel_name = data.vessel_name
    declaration.vessel_imo = data.vessel_imo
    declaration.departed_at = data.departed_at
    outbox.emit(session, _exported(declaration, data), source=SOURCE)
    return declaration, None


def _exported(declaration: Declaration, data: ShipmentDeparted) -> events.VehicleExported:
    return events.VehicleExported(
        enterprise_uscc=declaration.enterprise_uscc,
        declaration_no=declaration.declaration_no,
        vin=declaration.vin,
        bill_of_lading=data.bill_of_lading,
        vessel_name=data.vessel_name,
        vessel_imo=data.vessel_imo,
        port_of_loading=data.port_of_loading,
        departed_at=data.departed_at,
    )


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


def pending_of_enterprise(session: Session, uscc: str) -> list[Declaration]:
    return list(
        session.scalars(
            select(Declaration).where(
                Declaration.enterprise_uscc == uscc, Declaration.status == "pending"
            )
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
