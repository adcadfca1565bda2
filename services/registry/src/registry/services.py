"""Registry use cases: the only place a transaction opens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from pydantic import ValidationError
from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from contracts import events
from contracts.envelope import CloudEvent
from contracts.identifiers import vin_warnings
from registry import domain
from registry.models import Complaint, Enterprise, StatusChange, TimelineEntry, Vehicle
from registry.policy import RegistryPolicy
from registry.schemas import ComplaintCreate, EnterpriseCreate, VehicleCreate
from registry.settings import Settings
from servicekit import outbox, pagination
from servicekit.auth import hash_key, new_api_key
from servicekit.clock import civil_date, clock
from servicekit.problems import (
    TYPE_BASE,
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    Unauthorized,
    field_errors,
)
from servicekit.roles import Principal

SOURCE = "ucx/registry"


def _rule_problem(exc: domain.RuleViolation) -> Problem:
    errors = [{"field": exc.field or "body", "rule": exc.rule, "message": str(exc)}]
    return Problem(exc.rule.replace("_", "-"), str(exc), status=422, errors=errors)


# -- enterprises ------------------------------------------------------------------------------


def apply(session: Session, policy: RegistryPolicy, data: EnterpriseCreate) -> Enterprise:
    try:
        domain.check_province(data.uscc, data.province)
        domain.check_application(data.kind, data.appraiser_count, policy.min_dealer_appraisers)
    except domain.RuleViolation as exc:
        raise _rule_problem(exc) from exc
    now = clock.now()
    try:
        return _apply(session, policy, data, now)
    except IntegrityError as exc:  # a first application of the same USCC committed meanwhile
        current = session.get(Enterprise, data.uscc)
        raise _enterprise_exists(data.uscc, current.status if current else "applied") from exc


def _apply(
    session: Session, policy: RegistryPolicy, data: EnterpriseCreate, now: datetime
) -> Enterprise:
    with session.begin():
        existing = session.get(Enterprise, data.uscc, with_for_update=True)
        if existing is not None:
            _check_may_reapply(session, policy, existing, now)
            enterprise = existing
            for field, value in data.model_dump().items():
                setattr(enterprise, field, value)
            enterprise.api_key_hash = None
            enterprise.admission_valid_until = None
        else:
            enterprise = Enterprise(**data.model_dump(), applied_at=now)
            session.add(enterprise)
        _change_status(
            session, enterprise, "applied", "apply", "admin", "application filed", None, now
        )
        session.flush()  # a concurrent first application's row: IntegrityError here
    return enterprise


def _enterprise_exists(uscc: str, status: str) -> Conflict:
    return Conflict(
        "enterprise-exists",
        f"Enterprise {uscc} is already {status}.",
        uscc=uscc,
        current_status=status,
        enterprise=f"/v1/enterprises/{uscc}",
    )


def _check_may_reapply(
    session: Session, policy: RegistryPolicy, enterprise: Enterprise, now: datetime
) -> None:
    if enterprise.status == "rejected":
        return
    if enterprise.status == "exited":
        exited_at = session.scalar(
            select(StatusChange.changed_at)
            .where(
                StatusChange.uscc == enterprise.uscc,
                StatusChange.to_status == "exited",
                StatusChange.outcome == "applied",
            )
            .order_by(StatusChange.id.desc())
        )
        allowed = (exited_at or now) + timedelta(days=policy.reapply_after_exit_days)
        if now >= allowed:
            return
        raise Conflict(
            "reapply-too-early",
            f"An exited enterprise may reapply from {allowed.date().isoformat()}.",
            uscc=enterprise.uscc,
            current_status=enterprise.status,
            reapply_from=allowed.isoformat(),
        )
    raise _enterprise_exists(enterprise.uscc, enterprise.status)


def decide(
    session: Session,
    policy: RegistryPolicy,
    uscc: str,
    action: str,
    reason: str,
    official: Principal,
) -> tuple[Enterprise, str | None]:
    """An official's decision; returns the enterprise and, on approval, its new API key."""
    now = clock.now()
    api_key = None
    with session.begin():
        enterprise = _get_enterprise(session, uscc, lock=True)
        _expire_if_due(session, enterprise, now)
        target = domain.next_status(enterprise.status, action)
        if target is None:
            raise Conflict(
                "transition-not-allowed",
                f"Cannot {action} an enterprise that is {enterprise.status}.",
                current_status=enterprise.status,
                allowed_actions=domain.allowed_actions(enterprise.status),
            )
        if action in ("approve", "renew"):
            enterprise.admission_valid_until = civil_date(now) + timedelta(
                days=policy.admission_valid_days
            )
        if action == "approve":
            api_key = new_api_key("ucx_ent")
            enterprise.api_key_hash = hash_key(api_key)
        _change_status(
            session, enterprise, target, action, "official", reason, None, now, policy.version,
            official,
        )  # fmt: skip
    return enterprise, api_key


def apply_assessment(
    session: Session, policy: RegistryPolicy, data: events.EnterpriseAssessed, cause: str
) -> None:
    """Consumer handler for ``enterprise.assessed`` (``cause``: the event's id): the domain's
    judgement (``domain.judge_assessment``) persisted as a status change or a history entry.
    A renewal is no overruling decision (it must not escape an exit)."""
    enterprise = session.get(Enterprise, data.enterprise_uscc, with_for_update=True)
    if enterprise is None:
        return
    now = clock.now()
    _expire_if_due(session, enterprise, now)
    judged = domain.judge_assessment(
        policy, data, enterprise.status, enterprise.recommended, _overruled_at(session, enterprise)
    )
    if judged.outcome == "applied":
        assert judged.action is not None and judged.target is not None
        _change_status(
            session,
            enterprise,
            judged.target,
            judged.action,
            "policy",
            judged.why,
            cause,
            now,
            policy.version,
        )
    elif judged.outcome != "none":
        if judged.pending:
            enterprise.recommended = data.recommended_action
        _record_recommendation(
            session, policy, enterprise, data.recommended_action, judged, cause, now
        )


def _overruled_at(session: Session, enterprise: Enterprise) -> datetime | None:
    """The moment of the regulator's last decision judging the enterprise's standing."""
    return session.scalar(
        select(StatusChange.changed_at)
        .where(
            StatusChange.uscc == enterprise.uscc,
            StatusChange.actor.in_(("admin", "official")),
            StatusChange.outcome == "applied",
            StatusChange.action.not_in(domain.ADMINISTRATIVE_ACTIONS),
        )
        .order_by(StatusChange.id.desc())
    )


def _record_recommendation(
    session: Session,
    policy: RegistryPolicy,
    enterprise: Enterprise,
    recommended: str,
    judged: domain.Judgement,
    cause: str,
    now: datetime,
) -> None:
    """A history entry for a recommendation not applied (no status change, no event)."""
    session.add(
        StatusChange(
            uscc=enterprise.uscc,
            event_id=None,
            from_status=enterprise.status,
            to_status=enterprise.status,
            action=recommended,
            actor="policy",
            reason=judged.why,
            cause=cause,
            changed_at=now,
            outcome=judged.outcome,
            policy_version=policy.version,
        )
    )


def _expire_if_due(session: Session, enterprise: Enterprise, now: datetime) -> bool:
    effective = domain.effective_status(
        enterprise.status, enterprise.admission_valid_until, civil_date(now)
    )
    if effective == enterprise.status:
        return False
    reason = f"admission valid until {enterprise.admission_valid_until} was not renewed"
    _change_status(session, enterprise, effective, "expire", "system", reason, None, now)
    return True


def expire_overdue(session: Session, now: datetime) -> int:
    """Timer: every admission whose year has passed without renewal becomes ``expired``."""
    due = session.scalars(
        select(Enterprise).where(
            Enterprise.status.in_(domain.EXPIRES),
            Enterprise.admission_valid_until < civil_date(now),
        )
    ).all()
    return sum(_expire_if_due(session, enterprise, now) for enterprise in due)


def _change_status(
    session: Session,
    enterprise: Enterprise,
    to_status: str,
    action: str,
    actor: str,
    reason: str,
    cause: str | None,
    now: datetime,
    policy_version: str | None = None,
    official: Principal | None = None,
) -> None:
    """Every change is emitted; it ends any pending recommendation (the review list's entry)."""
    oid = official.id if official else None
    from_status = enterprise.status or None
    enterprise.status = to_status
    enterprise.updated_at = now
    enterprise.recommended = None
    said = {"from": from_status, "to": to_status, "actor": actor, "reason": reason, "cause": cause}
    data = {**said, "enterprise_uscc": enterprise.uscc, "changed_at": now, "official_id": oid}
    event = outbox.emit(
        session,
        events.EnterpriseStatusChanged.model_validate(data),
        source=SOURCE,
    )
    session.add(
        StatusChange(
            uscc=enterprise.uscc,
            event_id=event.id,
            from_status=from_status,
            to_status=to_status,
            action=action,
            actor=actor,
            reason=reason,
            cause=cause,
            changed_at=now,
            outcome="applied",
            policy_version=policy_version,
            official_id=oid,
            official_name=official.name if official else None,
        )
    )


def _get_enterprise(session: Session, uscc: str, lock: bool = False) -> Enterprise:
    enterprise = session.get(Enterprise, uscc.strip().upper(), with_for_update=lock)
    if enterprise is None:
        raise NotFound("enterprise-not-found", f"No enterprise {uscc} has applied.")
    return enterprise


def get_enterprise(session: Session, uscc: str) -> Enterprise:
    """Read; an admission that lapsed is expired on the spot (and the change emitted)."""
    with session.begin():
        enterprise = _get_enterprise(session, uscc)
        _expire_if_due(session, enterprise, clock.now())
    return enterprise


def list_enterprises(
    session: Session,
    status: str | None,
    province: str | None,
    cursor: str | None,
    limit: int,
    recommended: str | None = None,
) -> tuple[list[Enterprise], str | None]:
    """``recommended="reinstate"``: the regulator's review list, suspended enterprises whose
    assessment recommends reinstatement (an entry leaves it with any status change, or when a
    later assessment recommends something else)."""
    query = select(Enterprise).order_by(Enterprise.uscc).limit(limit)
    if recommended:
        query = query.where(Enterprise.recommended == recommended)
        if recommended == "reinstate":
            query = query.where(Enterprise.status == "suspended")
    if status:
        query = query.where(Enterprise.status == status)
    if province:
        query = query.where(Enterprise.province == province)
    after = pagination.decode(cursor)
    if after:
        query = query.where(Enterprise.uscc > after)
    rows = list(session.scalars(query))
    return rows, pagination.next_cursor([e.uscc for e in rows], limit)


def history(session: Session, uscc: str) -> list[StatusChange]:
    return _of_enterprise(session, uscc, StatusChange, StatusChange.id)


_Owned = TypeVar("_Owned", StatusChange, Complaint)


def _of_enterprise(
    session: Session, uscc: str, model: type[_Owned], order: InstrumentedAttribute[Any]
) -> list[_Owned]:
    """An enterprise's rows of ``model`` in ``order``; 404 if no such enterprise applied."""
    enterprise = _get_enterprise(session, uscc)
    query = select(model).where(model.uscc == enterprise.uscc).order_by(order)
    return list(session.scalars(query))


# -- vehicles ---------------------------------------------------------------------------------


def already_registered(vin: str) -> Conflict:
    return Conflict(
        "vehicle-already-registered",
        f"VIN {vin} is already registered.",
        vehicle=f"/v1/vehicles/{vin}",
    )


def _not_your_enterprise() -> Forbidden:
    return Forbidden(
        "not-your-enterprise", "The API key belongs to another enterprise than enterprise_uscc."
    )


def _may_not_register(status: str) -> Forbidden:
    return Forbidden(
        f"enterprise-{status}",
        f"An enterprise that is {status} cannot register vehicles.",
        enterprise_status=status,
    )


def _check_vehicle(
    settings: Settings, policy: RegistryPolicy, data: VehicleCreate, now: datetime
) -> None:
    domain.check_vehicle_dates(
        first_registration_date=data.first_registration_date,
        transfer_endorsed_on=data.transfer_endorsed_on,
        now=now,
        skew=timedelta(seconds=settings.clock_skew_s),
        policy=policy,
    )
    try:
        domain.check_vehicle(
            vin=data.vin,
            model_year=data.model_year,
            first_registration_date=data.first_registration_date,
            transfer_endorsed_on=data.transfer_endorsed_on,
            today=civil_date(now),
            policy=policy,
        )
    except domain.RuleViolation as exc:
        raise _rule_problem(exc) from exc


# Core statements on the tables, built once, executed on the session's connection: no ORM
# bookkeeping on the hot path
_INSERT_VEHICLE = insert(cast(Table, Vehicle.__table__))
_INSERT_TIMELINE = insert(cast(Table, TimelineEntry.__table__))
_ENTERPRISES = Enterprise.__table__.c
_KEY_HOLDER = select(
    _ENTERPRISES.uscc, _ENTERPRISES.name, _ENTERPRISES.status, _ENTERPRISES.admission_valid_until
).where(_ENTERPRISES.api_key_hash == bindparam("key_hash"))
_REGISTERED_VINS = select(Vehicle.vin).where(Vehicle.vin.in_(bindparam("vins", expanding=True)))


@dataclass(frozen=True)
class Registrant:
    """The enterprise a key registers vehicles for."""

    uscc: str
    name: str


def registrant(connection: Connection, key_hash: str, now: datetime) -> Registrant:
    """The one answer to "may this key register vehicles?", for the single and the batch
    registration and for the check before the body (``PartnerKeys``): the key's enterprise,
    or 401 ``invalid-credentials`` for a key no enterprise holds, 403 ``enterprise-<status>``
    for one not in good standing. An admission that lapsed counts as expired although its
    expiry is not recorded yet (a refusal writes nothing; the expiry timer records it).
    One indexed Core SELECT."""
    row = connection.execute(_KEY_HOLDER, {"key_hash": key_hash}).first()
    if row is None:
        raise Unauthorized("invalid-credentials", "The API key is not valid.")
    refused = domain.registration_refused(row.status, row.admission_valid_until, civil_date(now))
    if refused is not None:
        raise _may_not_register(refused)
    return Registrant(row.uscc, row.name)


judge_enterprise_key = registrant
"""The check before the body: the same answer as the unit's."""


def _check_registration(
    settings: Settings,
    policy: RegistryPolicy,
    owner: Registrant,
    data: VehicleCreate,
    now: datetime,
) -> None:
    """One vehicle's checks past its schema, the same for a single and a batch row."""
    if data.enterprise_uscc != owner.uscc:
        raise _not_your_enterprise()
    _check_vehicle(settings, policy, data, now)


def _add_vehicle(
    session: Session, owner: Registrant, data: VehicleCreate, now: datetime
) -> dict[str, Any]:
    """Core inserts (no ORM unit of work on the hot path): the vehicle, its timeline entry and
    its event, in the caller's transaction."""
    fields = data.model_dump()
    # validated already as VehicleCreate: construct without validating the same fields again
    event = outbox.emit(
        session,
        events.VehicleRegistered.model_construct(**fields, registered_at=now),
        source=SOURCE,
    )
    row = {
        **fields,
        "stage": "registered",
        "registered_at": now,
        "event_id": event.id,
        "warnings": vin_warnings(data.vin),
    }
    connection = session.connection()
    connection.execute(_INSERT_VEHICLE, row)
    connection.execute(
        _INSERT_TIMELINE,
        {
            "event_id": event.id,
            "vin": data.vin,
            "type": event.type,
            "source": SOURCE,
            "time": now,
            "stage": "registered",
            "summary": f"registered for export by {owner.name} ({owner.uscc})",
        },
    )
    return row


def register_vehicle(
    session: Session, settings: Settings, policy: RegistryPolicy, api_key: str, data: VehicleCreate
) -> dict[str, Any]:
    """A unit of work for the group-commit writer: runs inside the caller's transaction.
    Returns the vehicle's row as inserted; a second registration of the VIN is refused by the
    primary key (IntegrityError: the caller maps it to ``already_registered``)."""
    now = clock.now()
    owner = registrant(session.connection(), hash_key(api_key), now)
    _check_registration(settings, policy, owner, data, now)
    return _add_vehicle(session, owner, data, now)


def register_batch(
    session: Session,
    settings: Settings,
    policy: RegistryPolicy,
    api_key: str,
    rows: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """A unit of work for the writer: valid rows are inserted (one event each), invalid ones
    reported with the problem a single registration of the row would get. A key that may not
    register refuses the whole batch with the single registration's problem."""
    now = clock.now()
    owner = registrant(session.connection(), hash_key(api_key), now)
    judged = [
        _judge_row(settings, policy, owner, index, raw, now) for index, raw in enumerate(rows)
    ]
    valid = [row for row in judged if isinstance(row, VehicleCreate)]
    taken = set(session.scalars(_REGISTERED_VINS, {"vins": [data.vin for data in valid]}))
    results = []
    for index, row in enumerate(judged):
        if isinstance(row, VehicleCreate):
            row = _insert_row(session, owner, index, row, taken, now)
        results.append(row)
    return results


def _judge_row(
    settings: Settings,
    policy: RegistryPolicy,
    owner: Registrant,
    index: int,
    raw: dict[str, Any],
    now: datetime,
) -> VehicleCreate | dict[str, Any]:
    """The row's vehicle, or its rejection."""
    try:
        data = VehicleCreate.model_validate(raw)
        _check_registration(settings, policy, owner, data, now)
    except ValidationError as exc:
        vin = raw.get("vin") if isinstance(raw.get("vin"), str) else None
        return _rejected(index, vin, field_errors(exc.errors()))
    except Problem as exc:
        return _rejected(index, data.vin, _row_errors(exc, "enterprise_uscc"))
    return data


def _insert_row(
    session: Session,
    owner: Registrant,
    index: int,
    data: VehicleCreate,
    taken: set[str],
    now: datetime,
) -> dict[str, Any]:
    """One valid row inserted in its own savepoint, or rejected as a duplicate: of a VIN
    registered before, earlier in the batch, or meanwhile (the primary key)."""
    if data.vin in taken:
        return _rejected(index, data.vin, _row_errors(already_registered(data.vin), "vin"))
    taken.add(data.vin)
    try:
        with session.begin_nested():
            row = _add_vehicle(session, owner, data, now)
    except IntegrityError:
        return _rejected(index, data.vin, _row_errors(already_registered(data.vin), "vin"))
    return {"index": index, "vin": data.vin, "status": "created", "warnings": row["warnings"]}


def _row_errors(exc: Problem, field: str) -> list[dict[str, str]]:
    """A batch row's errors for the problem a single registration would answer: its field
    errors, or one error carrying the problem's type, detail and links."""
    if exc.extra.get("errors"):
        return list(exc.extra["errors"])
    links = {k: v for k, v in exc.extra.items() if isinstance(v, str)}
    return [
        {
            "field": field,
            "rule": exc.type_.replace("-", "_"),
            "message": exc.detail,
            "type": TYPE_BASE + exc.type_,
            "detail": exc.detail,
            **links,
        }
    ]


def _rejected(index: int, vin: str | None, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"index": index, "vin": vin, "status": "rejected", "errors": errors}


def visible_stage(policy: RegistryPolicy, vehicle: Vehicle, now: datetime) -> str:
    return domain.visible_stage(
        vehicle.stage, civil_date(vehicle.registered_at), civil_date(now), policy.stalled_after_days
    )


def get_vehicle(session: Session, vin: str) -> Vehicle:
    vehicle = session.get(Vehicle, vin.strip().upper())
    if vehicle is None:
        raise NotFound("vehicle-not-found", f"No vehicle {vin} is registered.")
    return vehicle


def list_vehicles(
    session: Session,
    policy: RegistryPolicy,
    enterprise: str | None,
    stage: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Vehicle], str | None]:
    query = select(Vehicle).order_by(Vehicle.vin).limit(limit)
    if enterprise:
        query = query.where(Vehicle.enterprise_uscc == enterprise.strip().upper())
    stalled_before = clock.now() - timedelta(days=policy.stalled_after_days)
    if stage == "stalled":
        query = query.where(Vehicle.stage != "exported", Vehicle.registered_at < stalled_before)
    elif stage == "exported":
        query = query.where(Vehicle.stage == "exported")
    elif stage:
        query = query.where(Vehicle.stage == stage, Vehicle.registered_at >= stalled_before)
    after = pagination.decode(cursor)
    if after:
        query = query.where(Vehicle.vin > after)
    rows = list(session.scalars(query))
    return rows, pagination.next_cursor([v.vin for v in rows], limit)


def timeline(session: Session, vin: str) -> tuple[Vehicle, list[TimelineEntry]]:
    vehicle = get_vehicle(session, vin)
    entries = session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.vin == vehicle.vin)
        .order_by(TimelineEntry.time, TimelineEntry.event_id)
    )
    return vehicle, list(entries)


def record_vehicle_event(session: Session, event: CloudEvent, summary: str, stage: str) -> None:
    """Consumer side: one timeline line per event id; the stage follows the events in the
    order they happened, whatever order they arrived in."""
    vin = event.subject or ""
    if session.get(TimelineEntry, event.id) is None:
        session.add(
            TimelineEntry(
                event_id=event.id,
                vin=vin,
                type=event.type,
                source=event.source,
                time=event.time,
                summary=summary,
                stage=stage,
            )
        )
        session.flush()
    vehicle = session.get(Vehicle, vin)
    if vehicle is not None:
        stages = session.scalars(
            select(TimelineEntry.stage)
            .where(TimelineEntry.vin == vin)
            .order_by(TimelineEntry.time, TimelineEntry.event_id)
        ).all()
        vehicle.stage = domain.stage_after(list(stages))


# -- complaints -------------------------------------------------------------------------------


def file_complaint(session: Session, uscc: str, data: ComplaintCreate) -> Complaint:
    now = clock.now()
    with session.begin():
        enterprise = _get_enterprise(session, uscc)
        if data.vin is not None:
            vehicle = session.get(Vehicle, data.vin)
            if (
                vehicle is None
                or vehicle.enterprise_uscc != enterprise.uscc
                or vehicle.stage != "exported"
            ):
                raise Problem(
                    "complaint-vehicle-not-exported",
                    f"VIN {data.vin} is not a vehicle this enterprise exported.",
                    status=422,
                    errors=[
                        {
                            "field": "vin",
                            "rule": "complaint_vin_not_exported",
                            "message": "must be one of the enterprise's exported vehicles",
                        }
                    ],
                )
        complaint = Complaint(
            id=str(uuid.uuid4()),
            uscc=enterprise.uscc,
            vin=data.vin,
            country=data.country,
            category=data.category,
            description=data.description,
            status="open",
            filed_at=now,
        )
        session.add(complaint)
        outbox.emit(
            session,
            events.ComplaintFiled(
                enterprise_uscc=enterprise.uscc,
                complaint_id=complaint.id,
                vin=data.vin,
                country=data.country,
                category=data.category,
                filed_at=now,
            ),
            source=SOURCE,
        )
    return complaint


def resolve_complaint(session: Session, uscc: str, complaint_id: str, resolution: str) -> Complaint:
    now = clock.now()
    with session.begin():
        complaint = _get_complaint(session, uscc, complaint_id)
        if complaint.status == "resolved":
            raise Conflict(
                "complaint-resolved",
                "The complaint is resolved already.",
                current_status=complaint.status,
            )
        complaint.status = "resolved"
        complaint.resolved_at = now
        complaint.resolution = resolution
        outbox.emit(
            session,
            events.ComplaintResolved(
                enterprise_uscc=complaint.uscc,
                complaint_id=complaint.id,
                resolved_at=now,
            ),
            source=SOURCE,
        )
    return complaint


def _get_complaint(session: Session, uscc: str, complaint_id: str) -> Complaint:
    complaint = session.get(Complaint, complaint_id)
    if complaint is None or complaint.uscc != uscc.strip().upper():
        raise NotFound("complaint-not-found", f"No complaint {complaint_id} for {uscc}.")
    return complaint


def get_complaint(session: Session, uscc: str, complaint_id: str) -> Complaint:
    return _get_complaint(session, uscc, complaint_id)


def list_complaints(session: Session, uscc: str) -> list[Complaint]:
    return _of_enterprise(session, uscc, Complaint, Complaint.filed_at)
