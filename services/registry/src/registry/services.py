"""Registry use cases: the only place a transaction opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import new_event
from registry import domain
from registry.models import Enterprise, StatusChange, TimelineEntry, Vehicle
from registry.schemas import EnterpriseCreate, VehicleCreate
from registry.settings import Settings
from servicekit import outbox, tracing
from servicekit.auth import hash_key, new_api_key
from servicekit.problems import Conflict, Forbidden, NotFound, Problem, Unauthorized

SOURCE = "ucx/registry"


def _rule_problem(exc: domain.RuleViolation) -> Problem:
    errors = [{"field": exc.field or "body", "rule": exc.rule, "message": str(exc)}]
    return Problem(exc.rule.replace("_", "-"), str(exc), status=422, errors=errors)


def apply(session: Session, settings: Settings, data: EnterpriseCreate) -> Enterprise:
    try:
        domain.check_province(data.uscc, data.province)
        domain.check_application(data.kind, data.appraiser_count, settings.min_dealer_appraisers)
    except domain.RuleViolation as exc:
        raise _rule_problem(exc) from exc
    now = datetime.now(UTC)
    with session.begin():
        existing = session.get(Enterprise, data.uscc, with_for_update=True)
        if existing is not None:
            _check_may_reapply(session, settings, existing, now)
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
    return enterprise


def _check_may_reapply(
    session: Session, settings: Settings, enterprise: Enterprise, now: datetime
) -> None:
    if enterprise.status == "rejected":
        return
    if enterprise.status == "exited":
        exited_at = session.scalar(
            select(StatusChange.changed_at)
            .where(StatusChange.uscc == enterprise.uscc, StatusChange.to_status == "exited")
            .order_by(StatusChange.id.desc())
        )
        allowed = (exited_at or now).replace(tzinfo=UTC) + timedelta(
            days=settings.reapply_after_exit_days
        )
        if now >= allowed:
            return
        raise Conflict(
            "reapply-too-early",
            f"An exited enterprise may reapply from {allowed.date().isoformat()}.",
            uscc=enterprise.uscc,
            current_status=enterprise.status,
            reapply_from=allowed.isoformat(),
        )
    raise Conflict(
        "enterprise-exists",
        f"Enterprise {enterprise.uscc} is already {enterprise.status}.",
        uscc=enterprise.uscc,
        current_status=enterprise.status,
        enterprise=f"/v1/enterprises/{enterprise.uscc}",
    )


def decide(
    session: Session, settings: Settings, uscc: str, action: str, reason: str
) -> tuple[Enterprise, str | None]:
    """An admin decision; returns the enterprise and, on approval, its new API key."""
    now = datetime.now(UTC)
    api_key = None
    with session.begin():
        enterprise = _get_enterprise(session, uscc, lock=True)
        target = domain.next_status(enterprise.status, action)
        if target is None:
            raise Conflict(
                "transition-not-allowed",
                f"Cannot {action} an enterprise that is {enterprise.status}.",
                current_status=enterprise.status,
                allowed_actions=domain.allowed_actions(enterprise.status),
            )
        if action in ("approve", "renew"):
            enterprise.admission_valid_until = now.date() + timedelta(
                days=settings.admission_valid_days
            )
        if action == "approve":
            api_key = new_api_key("ucx_ent")
            enterprise.api_key_hash = hash_key(api_key)
        _change_status(session, enterprise, target, action, "admin", reason, None, now)
    return enterprise, api_key


def _change_status(
    session: Session,
    enterprise: Enterprise,
    to_status: str,
    action: str,
    actor: str,
    reason: str,
    cause: str | None,
    now: datetime,
) -> None:
    from_status = enterprise.status or None
    event = new_event(
        events.EnterpriseStatusChanged.model_validate(
            {
                "enterprise_uscc": enterprise.uscc,
                "from": from_status,
                "to": to_status,
                "actor": actor,
                "reason": reason,
                "cause": cause,
                "changed_at": now,
            }
        ),
        source=SOURCE,
        trace_id=tracing.current_trace_id(),
    )
    enterprise.status = to_status
    enterprise.updated_at = now
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
        )
    )
    outbox.add(session, event)


def _get_enterprise(session: Session, uscc: str, lock: bool = False) -> Enterprise:
    enterprise = session.get(Enterprise, uscc, with_for_update=lock)
    if enterprise is None:
        raise NotFound("enterprise-not-found", f"No enterprise {uscc} has applied.")
    return enterprise


def get_enterprise(session: Session, uscc: str) -> Enterprise:
    return _get_enterprise(session, uscc)


def history(session: Session, uscc: str) -> list[StatusChange]:
    _get_enterprise(session, uscc)
    return list(
        session.scalars(
            select(StatusChange).where(StatusChange.uscc == uscc).order_by(StatusChange.id)
        )
    )


def authenticate_enterprise(session: Session, api_key: str) -> Enterprise:
    enterprise = session.scalar(
        select(Enterprise).where(Enterprise.api_key_hash == hash_key(api_key))
    )
    if enterprise is None:
        raise Unauthorized("invalid-credentials", "The API key is not valid.")
    return enterprise


def register_vehicle(
    session: Session, settings: Settings, api_key: str, data: VehicleCreate
) -> Vehicle:
    try:
        return _register_vehicle(session, settings, api_key, data)
    except IntegrityError as exc:  # a concurrent registration of the same VIN won the race
        raise _already_registered(data.vin) from exc


def _already_registered(vin: str) -> Conflict:
    return Conflict(
        "vehicle-already-registered",
        f"VIN {vin} is already registered.",
        vehicle=f"/v1/vehicles/{vin}",
    )


def _register_vehicle(
    session: Session, settings: Settings, api_key: str, data: VehicleCreate
) -> Vehicle:
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    with session.begin():
        enterprise = authenticate_enterprise(session, api_key)
        if enterprise.uscc != data.enterprise_uscc:
            raise Forbidden(
                "not-your-enterprise",
                "The API key belongs to another enterprise than enterprise_uscc.",
            )
        if enterprise.status not in domain.MAY_REGISTER_VEHICLES:
            raise Forbidden(
                f"enterprise-{enterprise.status}",
                f"An enterprise that is {enterprise.status} cannot register vehicles.",
                enterprise_status=enterprise.status,
            )
        try:
            domain.check_vehicle(
                vin=data.vin,
                model_year=data.model_year,
                first_registration_date=data.first_registration_date,
                transfer_endorsed_on=data.transfer_endorsed_on,
                today=today,
                endorsement_max_age_days=settings.transfer_endorsement_max_age_days,
            )
        except domain.RuleViolation as exc:
            raise _rule_problem(exc) from exc
        if session.get(Vehicle, data.vin) is not None:
            raise _already_registered(data.vin)
        event = new_event(
            events.VehicleRegistered(**data.model_dump(), registered_at=now),
            source=SOURCE,
            trace_id=tracing.current_trace_id(),
        )
        vehicle = Vehicle(
            **data.model_dump(), stage="registered", registered_at=now, event_id=event.id
        )
        session.add(vehicle)
        session.add(
            TimelineEntry(
                event_id=event.id,
                vin=data.vin,
                type=event.type,
                source=SOURCE,
                time=now,
                summary=f"registered for export by {enterprise.name} ({enterprise.uscc})",
            )
        )
        outbox.add(session, event)
    return vehicle


def get_vehicle(session: Session, vin: str) -> Vehicle:
    vehicle = session.get(Vehicle, vin.strip().upper())
    if vehicle is None:
        raise NotFound("vehicle-not-found", f"No vehicle {vin} is registered.")
    return vehicle


def timeline(session: Session, vin: str) -> tuple[Vehicle, list[TimelineEntry]]:
    vehicle = get_vehicle(session, vin)
    entries = session.scalars(
        select(TimelineEntry).where(TimelineEntry.vin == vehicle.vin).order_by(TimelineEntry.time)
    )
    return vehicle, list(entries)
