"""Inspection use cases: the only place a transaction opens."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from contracts import events
from inspection import domain
from inspection.models import Inspection, KnownVehicle, Station, StationKey
from inspection.policy import InspectionPolicy
from inspection.schemas import InspectionCreate, StationCreate
from inspection.settings import Settings
from servicekit import outbox
from servicekit.auth import hash_key, new_api_key
from servicekit.clock import civil_date, clock
from servicekit.problems import Conflict, Forbidden, NotFound, Problem, Unauthorized

SOURCE = "ucx/inspection"


def create_station(session: Session, data: StationCreate) -> tuple[Station, StationKey, str]:
    now = clock.now()
    with session.begin():
        station = Station(
            id=str(uuid.uuid4()), **data.model_dump(), status="active", created_at=now
        )
        session.add(station)
        key, api_key = _new_key(session, station.id, now)
    return station, key, api_key


def _new_key(session: Session, station_id: str, now: datetime) -> tuple[StationKey, str]:
    api_key = new_api_key("ucx_stn")
    key = StationKey(
        id=str(uuid.uuid4()), station_id=station_id, key_hash=hash_key(api_key), created_at=now
    )
    session.add(key)
    return key, api_key


def _get_station(session: Session, station_id: str) -> Station:
    station = session.get(Station, station_id)
    if station is None:
        raise NotFound("station-not-found", f"No station {station_id}.")
    return station


def rotate_key(
    session: Session, settings: Settings, station_id: str
) -> tuple[StationKey, str, datetime]:
    """A new key; the current ones keep working for the grace period, then stop."""
    now = clock.now()
    until = now + timedelta(hours=settings.rotated_key_grace_hours)
    with session.begin():
        _get_station(session, station_id)
        for old in session.scalars(
            select(StationKey).where(
                StationKey.station_id == station_id,
                StationKey.revoked_at.is_(None),
                StationKey.expires_at.is_(None),
            )
        ):
            old.expires_at = until
        key, api_key = _new_key(session, station_id, now)
    return key, api_key, until


def revoke_key(session: Session, station_id: str, key_id: str) -> StationKey:
    with session.begin():
        key = session.get(StationKey, key_id)
        if key is None or key.station_id != station_id:
            raise NotFound("key-not-found", f"No key {key_id} for station {station_id}.")
        key.revoked_at = key.revoked_at or clock.now()
    return key


def list_keys(session: Session, station_id: str) -> list[StationKey]:
    _get_station(session, station_id)
    return list(
        session.scalars(
            select(StationKey)
            .where(StationKey.station_id == station_id)
            .order_by(StationKey.created_at)
        )
    )


def set_station_status(session: Session, station_id: str, status: str) -> Station:
    with session.begin():
        station = _get_station(session, station_id)
        station.status = status
    return station


_STATIONS, _KEYS = cast(Table, Station.__table__), cast(Table, StationKey.__table__)
_VEHICLES, _INSPECTIONS = cast(Table, KnownVehicle.__table__), cast(Table, Inspection.__table__)
_STANDING = Inspection.metadata.tables["enterprise_standing"]
# Core statements, built once (values as bind parameters, so SQLAlchemy's statement cache
# finds them without rebuilding a cache key), run on the session's connection
_POSTING_STATION = select(
    _KEYS.c.revoked_at, _KEYS.c.expires_at, _STATIONS.c.id, _STATIONS.c.status,
    _STATIONS.c.accreditation_valid_until,
).join_from(_KEYS, _STATIONS, _KEYS.c.station_id == _STATIONS.c.id).where(
    _KEYS.c.key_hash == bindparam("key_hash")
)  # fmt: skip
_VEHICLE = select(  # in domain.Vehicle's order, with its enterprise's standing (None: unheard of)
    _VEHICLES.c.enterprise_uscc, _VEHICLES.c.model_year, _VEHICLES.c.mileage_km,
    _VEHICLES.c.transfer_endorsed_on, _STANDING.c.status,
).outerjoin_from(
    _VEHICLES, _STANDING, _STANDING.c.uscc == _VEHICLES.c.enterprise_uscc
).where(_VEHICLES.c.vin == bindparam("vin"))  # fmt: skip
_EARLIER = select(func.count(), func.max(_INSPECTIONS.c.odometer_km)).where(
    _INSPECTIONS.c.vin == bindparam("vin")
)
_INSERT_INSPECTION = insert(_INSPECTIONS)


def judge_station_key(connection: Connection, key_hash: str, now: datetime) -> str:
    """The id of the station holding the key, if it may post now; its 401/403 otherwise.
    The api judges a key with it before the body, and the unit again in its transaction."""
    row = connection.execute(_POSTING_STATION, {"key_hash": key_hash}).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("invalid-credentials", "The station API key is not valid.")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("key-expired", "This station key was rotated and has expired.")
    if row.status != "active":
        raise Forbidden(f"station-{row.status}", f"The station is {row.status}.")
    if row.accreditation_valid_until < civil_date(now):
        raise Forbidden(
            "accreditation-expired",
            f"The station's accreditation expired on {row.accreditation_valid_until}.",
        )
    return str(row.id)


def record_inspection(
    session: Session,
    settings: Settings,
    policy: InspectionPolicy,
    api_key: str,
    report: InspectionCreate,
) -> domain.Inspected:
    """A unit of work for the group-commit writer: the posting key judged (401/403), the
    vehicle, its enterprise's standing and its earlier inspections read, the report decided
    by :func:`domain.inspect` (a refusal raised, nothing written), the inspection inserted
    with its event. Earlier units of the same group are visible: their inserts ran on this
    connection already."""
    now = clock.now()
    connection = session.connection()
    station_id = judge_station_key(connection, hash_key(api_key), now)
    vehicle = connection.execute(_VEHICLE, {"vin": report.vin}).first()
    count, max_odometer_km = connection.execute(_EARLIER, {"vin": report.vin}).one()
    decided = domain.inspect(
        report,
        policy,
        station_id=station_id,
        vehicle=None if vehicle is None else domain.Vehicle(*vehicle),
        earlier=domain.Earlier(count, max_odometer_km),
        now=now,
        skew=timedelta(seconds=settings.clock_skew_s),
    )
    if isinstance(decided, Problem):
        raise decided
    event = outbox.emit(session, _inspected(decided), source=SOURCE)
    # the value's fields are the row's columns
    connection.execute(
        _INSERT_INSPECTION, {**vars(decided), "event_id": event.id, "revoked_as_forged": False}
    )
    return decided


def _inspected(inspection: domain.Inspected) -> events.VehicleInspected:
    """The decision as an event, from the decided inspection."""
    return events.VehicleInspected(
        enterprise_uscc=inspection.enterprise_uscc,
        inspection_id=inspection.id,
        vin=inspection.vin,
        station_id=inspection.station_id,
        inspected_at=inspection.inspected_at,
        odometer_km=inspection.odometer_km,
        verdict=inspection.verdict,
        first_inspection=inspection.first_inspection,
        items=[events.InspectionItem.model_construct(**item) for item in inspection.items],
        failed_items=inspection.failed_items,
        fraud_signals=inspection.fraud_signals,
        certificate_no=inspection.certificate_no,
        valid_until=inspection.valid_until,
        policy_version=inspection.policy_version,
        received_at=inspection.received_at,
    )


def certificate(session: Session, certificate_no: str, vin: str, today: date) -> dict[str, Any]:
    """The public answer: status and what an importer needs, nothing private. A wrong VIN
    is indistinguishable from an unknown certificate (no enumeration)."""
    number = certificate_no.strip().upper()
    inspection = None
    if domain.certificate_checksum_ok(number):
        inspection = session.scalar(select(Inspection).where(Inspection.certificate_no == number))
    if inspection is None or inspection.vin != vin.strip().upper():
        return {"certificate_no": number, "status": "not_found"}
    vehicle = session.get(KnownVehicle, inspection.vin)
    assert inspection.valid_until is not None
    if inspection.revoked_at is not None:
        status = "revoked"
    elif inspection.valid_until < today:
        status = "expired"
    else:
        status = "valid"
    return {
        "certificate_no": number,
        "status": status,
        "vin": inspection.vin,
        "make": vehicle.make if vehicle else None,
        "model": vehicle.model if vehicle else None,
        "model_year": vehicle.model_year if vehicle else None,
        "inspected_at": inspection.inspected_at.isoformat(),
        "valid_until": inspection.valid_until.isoformat(),
    }


def revoke_certificate(
    session: Session, certificate_no: str, reason: str, forged: bool
) -> Inspection:
    now = clock.now()
    with session.begin():
        inspection = session.scalar(
            select(Inspection).where(Inspection.certificate_no == certificate_no.strip().upper())
        )
        if inspection is None:
            raise NotFound("certificate-not-found", f"No certificate {certificate_no}.")
        if inspection.revoked_at is not None:
            raise Conflict("certificate-revoked", "The certificate is revoked already.")
        inspection.revoked_at = now
        inspection.revoked_reason = reason
        inspection.revoked_as_forged = forged
        outbox.emit(
            session,
            events.CertificateRevoked(
                enterprise_uscc=inspection.enterprise_uscc,
                certificate_no=inspection.certificate_no or "",
                vin=inspection.vin,
                inspection_id=inspection.id,
                reason=reason,
                forged=forged,
                revoked_at=now,
            ),
            source=SOURCE,
        )
    return inspection
