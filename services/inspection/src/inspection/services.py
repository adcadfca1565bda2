"""Inspection use cases: the only place a transaction opens."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts import events
from inspection import domain
from inspection.models import Inspection, KnownVehicle, Station, StationKey
from inspection.schemas import InspectionCreate, StationCreate
from inspection.settings import Settings
from servicekit import outbox, standing
from servicekit.auth import hash_key, new_api_key
from servicekit.problems import Conflict, Forbidden, NotFound, Problem, Unauthorized

SOURCE = "ucx/inspection"
BLOCKED_STATUSES = frozenset({"suspended", "exited", "expired", "rejected"})


def create_station(session: Session, data: StationCreate) -> tuple[Station, StationKey, str]:
    now = datetime.now(UTC)
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
    now = datetime.now(UTC)
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
        key.revoked_at = key.revoked_at or datetime.now(UTC)
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


def authenticate_station(session: Session, api_key: str, now: datetime) -> Station:
    key = session.scalar(select(StationKey).where(StationKey.key_hash == hash_key(api_key)))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("invalid-credentials", "The station API key is not valid.")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized("key-expired", "This station key was rotated and has expired.")
    station = _get_station(session, key.station_id)
    if station.status != "active":
        raise Forbidden(f"station-{station.status}", f"The station is {station.status}.")
    if station.accreditation_valid_until < now.date():
        raise Forbidden(
            "accreditation-expired",
            f"The station's accreditation expired on {station.accreditation_valid_until}.",
        )
    return station


def record_inspection(
    session: Session, settings: Settings, api_key: str, report: InspectionCreate
) -> Inspection:
    now = datetime.now(UTC)
    items = [domain.ItemReport(i.code, i.result, i.note) for i in report.items]
    try:
        domain.check_items(items)
    except domain.ChecklistError as exc:
        raise Problem("checklist-invalid", str(exc), status=422, errors=exc.problems) from exc
    station = authenticate_station(session, api_key, now)
    vehicle = session.get(KnownVehicle, report.vin)
    if vehicle is None:
        raise NotFound(
            "vehicle-not-registered",
            f"Vehicle {report.vin} is not registered for export; register it with the "
            "registry first (it may take a moment to arrive here).",
        )
    status = standing.status_of(session, vehicle.enterprise_uscc)
    if status in BLOCKED_STATUSES:
        raise Conflict(
            f"enterprise-{status}",
            f"The exporting enterprise is {status}; its vehicles cannot be inspected.",
            enterprise_status=status,
        )
    earlier_count, earlier_max_odometer = session.execute(
        select(func.count(), func.max(Inspection.odometer_km)).where(Inspection.vin == report.vin)
    ).one()
    verdict = domain.decide(
        items,
        vin=report.vin,
        model_year=vehicle.model_year,
        odometer_km=report.odometer_km,
        mileage_floor_km=max(vehicle.mileage_km, earlier_max_odometer or 0),
        inspected_at=report.inspected_at,
        registered_at=vehicle.registered_at,
        now=now,
    )
    certificate_no = valid_until = None
    if verdict.verdict == "pass":
        certificate_no = domain.new_certificate_no(now.date())
        valid_until = now.date() + timedelta(days=settings.certificate_valid_days)
    inspection_id = str(uuid.uuid4())
    item_rows = [
        {
            "code": i.code,
            "result": i.result,
            "severity": domain.CHECKLIST[i.code],
            "note": i.note,
        }
        for i in items
    ]
    event = outbox.emit(
        session,
        events.VehicleInspected(
            enterprise_uscc=vehicle.enterprise_uscc,
            inspection_id=inspection_id,
            vin=report.vin,
            station_id=station.id,
            inspected_at=report.inspected_at,
            odometer_km=report.odometer_km,
            verdict=verdict.verdict,
            first_inspection=earlier_count == 0,
            items=[events.InspectionItem(**row) for row in item_rows],
            failed_items=verdict.failed_items,
            fraud_signals=verdict.fraud_signals,
            certificate_no=certificate_no,
            valid_until=valid_until,
        ),
        source=SOURCE,
    )
    inspection = Inspection(
        id=inspection_id,
        vin=report.vin,
        enterprise_uscc=vehicle.enterprise_uscc,
        station_id=station.id,
        inspector=report.inspector,
        inspected_at=report.inspected_at,
        odometer_km=report.odometer_km,
        verdict=verdict.verdict,
        first_inspection=earlier_count == 0,
        items=item_rows,
        failed_items=verdict.failed_items,
        remarks=verdict.remarks,
        fraud_signals=verdict.fraud_signals,
        certificate_no=certificate_no,
        valid_until=valid_until,
        created_at=now,
        event_id=event.id,
    )
    session.add(inspection)
    return inspection


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
    now = datetime.now(UTC)
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
