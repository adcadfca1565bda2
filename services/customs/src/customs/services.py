"""Customs use cases: the only place a transaction opens."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, Select, Table, and_, bindparam, insert, or_, select, update
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
from servicekit.idempotency import Answer
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
    now = clock.now()
    try:
        with session.begin():
            broker = Broker(
                id=str(uuid.uuid4()), name=data.name, customs_code=data.customs_code, created_at=now
            )
            session.add(broker)
            session.flush()
            secret = vault.issue(session, BrokerSecret, broker.id, settings.secret_key, now)
            for uscc in sorted(set(data.enterprises)):
                session.add(BrokerEnterprise(broker_id=broker.id, uscc=uscc))
    except IntegrityError as exc:
        raise Conflict(
            "broker-exists", f"A broker with customs code {data.customs_code} is registered."
        ) from exc
    return broker, secret


def rotate_broker_secret(
    session: Session, settings: Settings, broker_id: str
) -> tuple[str, datetime]:
    """A new signing secret; the old ones keep verifying during the overlap window."""
    overlap = timedelta(hours=settings.secret_overlap_hours)
    with session.begin():
        if session.get(Broker, broker_id) is None:
            raise NotFound("broker-not-found", f"No broker {broker_id}.")
        return vault.rotate(session, BrokerSecret, broker_id, settings.secret_key, overlap)


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
_REFUSALS = cast(Table, RefusedDeparture.__table__)
# Core statements built once with bind parameters (the statement cache finds them as they
# are), run on the session's connection: every read and write of the data path (webhooks and
# the worker's projections and decisions) is Core, so each sees the others' writes at once.
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
_UPDATE_DECLARATION = update(_DECLARATIONS).where(
    _DECLARATIONS.c.declaration_no == bindparam("declaration")
)
"""SET what the parameters other than ``declaration`` name."""
_DECLARATION = (
    select(_DECLARATIONS)
    .where(_DECLARATIONS.c.declaration_no == bindparam("declaration_no"))
    .with_for_update()
)
_PENDING = select(_DECLARATIONS).where(_DECLARATIONS.c.status == "pending").with_for_update()
_PENDING_OF_VIN = _PENDING.where(_DECLARATIONS.c.vin == bindparam("vin"))
_PENDING_OF_ENTERPRISE = _PENDING.where(_DECLARATIONS.c.enterprise_uscc == bindparam("uscc"))
_PENDING_SINCE = _PENDING.where(_DECLARATIONS.c.lodged_at <= bindparam("cutoff"))
_EXPORTED = (
    select(_VEHICLES.c.exported).where(_VEHICLES.c.vin == bindparam("vin")).with_for_update()
)
_EXPORT = update(_VEHICLES).where(_VEHICLES.c.vin == bindparam("the_vin")).values(exported=True)
_DEPARTURE_FIELDS = {"bill_of_lading", "vessel_name", "vessel_imo", "departed_at"}
"""What a departure writes on its declaration, as the broker sent it."""
_INSERT_REFUSAL = insert(_REFUSALS)
_REFUSAL_FIELDS = set(_REFUSALS.c.keys()) - {"id"}
"""A refusal's row is its event's fields (``DepartureRefused``) and an id."""


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
    """Apply in a savepoint (a refusal rolls back what the message began); every write is a
    Core statement, so a constraint violation surfaces there and is this message's own. The
    checks foresee every constraint; one can still fire when another connection committed the
    same VIN's lodging a moment earlier (the open-declaration index), so the message is judged
    once more against what is committed now. A violation that persists is a final 409,
    remembered like any answer: never a 500, never an answer the broker would retry forever."""
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return _apply(session, settings, broker, webhook_id, message)
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
    return customs_policy.load(settings.policy_path)


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


# -- declarations: one value, written with Core ----------------------------------------------
# A ``Declaration`` here is a value: built from the lodging or read from its row, never added
# to a session. Its row is written by ``_insert`` (the lodging, decided or pending) and
# ``_change`` (a decision, a step), nowhere else.


def _insert(session: Session, declaration: Declaration) -> None:
    session.connection().execute(
        _INSERT_DECLARATION, {c.key: getattr(declaration, c.key) for c in _DECLARATIONS.columns}
    )


def _set(declaration: Declaration, changes: Mapping[str, Any]) -> None:
    for name, value in changes.items():
        setattr(declaration, name, value)


def _change(session: Session, declaration: Declaration, changes: Mapping[str, Any]) -> None:
    """Set ``changes`` on the value and on its row."""
    _set(declaration, changes)
    session.connection().execute(
        _UPDATE_DECLARATION, {"declaration": declaration.declaration_no, **changes}
    )


def _read(session: Session, statement: Select[Any], params: dict[str, Any]) -> list[Declaration]:
    """Declarations as values, their rows locked until the transaction ends."""
    rows = session.connection().execute(statement, params)
    return [Declaration(**row._mapping) for row in rows]


def _lodge(
    session: Session, settings: Settings, broker: BrokerRef, data: DeclarationLodged
) -> Declaration:
    """Decided at once unless it must wait, and inserted as decided (one statement). Judged
    at ``lodged_at``, the moment customs received it; ``declared_at`` is the broker's claim,
    bounded and kept."""
    _acts_for(session, broker, data.enterprise_uscc)
    received_at = clock.now()
    _check_claim(settings, "declared_at", data.declared_at, received_at)
    claimed = session.connection().execute(
        _CLAIMED, {"declaration_no": data.declaration_no, "vin": data.vin}
    )
    open_declaration = None
    for declaration_no in claimed.scalars():
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
    decided = _decision(session, settings, declaration, open_declaration=open_declaration)
    _set(declaration, decided or {})
    _insert(session, declaration)
    if decided is not None:
        outbox.emit(session, _declared(declaration), source=SOURCE)
    return declaration


def _inspection_facts(row: Any) -> domain.InspectionFacts | None:
    if row is None:
        return None
    return domain.InspectionFacts(row.verdict, row.certificate_no, row.valid_until, row.revoked)


def _decision(
    session: Session,
    settings: Settings,
    declaration: Declaration,
    *,
    force: bool = False,
    open_declaration: str | None = None,
) -> dict[str, Any] | None:
    """What deciding a pending declaration now writes, or None while a vehicle or inspection
    event may still be on its way and could make it acceptable (``force`` decides with what is
    known). ``open_declaration``: another open declaration of the VIN."""
    connection = session.connection()
    vehicle, inspection = _facts(connection, declaration.vin)
    enterprise = standing.status_of(session, declaration.enterprise_uscc)
    known = domain.Known(vehicle, enterprise, inspection, open_declaration)
    policy = _policy(settings)
    decision = domain.settle(_lodged_of(declaration), known, policy, force=force)
    if decision is None:
        return None
    return {
        "status": decision.outcome,
        "reasons": decision.reasons,
        "reason_details": decision.details,
        "decided_at": clock.now(),
        "policy_version": policy.version,
    }


def _decide_pending(
    session: Session,
    settings: Settings,
    statement: Select[Any],
    params: dict[str, Any],
    *,
    force: bool = False,
) -> int:
    """Decide the pending declarations ``statement`` selects, where it is certain now (all of
    them with ``force``); returns how many were judged."""
    pending = _read(session, statement, params)
    for declaration in pending:
        decided = _decision(session, settings, declaration, force=force)
        if decided is not None:
            _change(session, declaration, decided)
            outbox.emit(session, _declared(declaration), source=SOURCE)
    return len(pending)


def decide_pending_of_vin(session: Session, settings: Settings, vin: str) -> None:
    """The VIN's vehicle or inspection arrived: its waiting declarations may be decided."""
    _decide_pending(session, settings, _PENDING_OF_VIN, {"vin": vin})


def decide_pending_of_enterprise(session: Session, settings: Settings, uscc: str) -> None:
    """The enterprise's standing changed: a known bad one makes its waiting ones certain."""
    _decide_pending(session, settings, _PENDING_OF_ENTERPRISE, {"uscc": uscc})


def decide_overdue(session: Session, settings: Settings, now: datetime) -> int:
    """Pending declarations past the timeout are decided with what is known."""
    cutoff = now - timedelta(seconds=settings.pending_timeout_s)
    return _decide_pending(session, settings, _PENDING_SINCE, {"cutoff": cutoff}, force=True)


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
    found = _read(session, _DECLARATION, {"declaration_no": declaration_no})
    if not found:
        raise NotFound("declaration-not-found", f"No declaration {declaration_no} was lodged.")
    _acts_for(session, broker, found[0].enterprise_uscc)
    return found[0]


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
    """Record and emit a refused release or departure: the assessment must see the attempt.
    The row is the event's fields."""
    refused = events.DepartureRefused(
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
    )
    session.connection().execute(
        _INSERT_REFUSAL, {"id": str(uuid.uuid4()), **refused.model_dump(include=_REFUSAL_FIELDS)}
    )
    outbox.emit(session, refused, source=SOURCE)
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
    _change(session, declaration, {"status": "released", "released_at": data.released_at})
    return declaration, None


def _withdraw(session: Session, broker: BrokerRef, data: DeclarationWithdrawn) -> Declaration:
    declaration = _declaration_for(session, broker, data.declaration_no)
    _require_status(declaration, {"pending", "accepted"}, "withdraw")
    _change(session, declaration, {"status": "withdrawn"})
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
    connection = session.connection()
    exported = connection.execute(_EXPORTED, {"vin": declaration.vin}).scalar_one_or_none()
    details: dict[str, str] = {}
    reasons = domain.departure_prerequisites(exported=bool(exported), status=declaration.status)
    if not reasons:
        reasons, details = _recheck(session, settings, declaration, now)
    if reasons:
        return declaration, _refuse(
            session, broker, declaration, "departure", reasons, details, data.bill_of_lading, now
        )
    if exported is None:
        raise Conflict("vehicle-unknown", f"Vehicle {declaration.vin} is not known to customs.")
    connection.execute(_EXPORT, {"the_vin": declaration.vin})
    departure = data.model_dump(include=_DEPARTURE_FIELDS)
    _change(session, declaration, {"status": "exported", **departure})
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
