"""Inspection use cases: the only place a transaction opens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import new_event
from inspection import domain
from inspection.models import Inspection, KnownVehicle, Station
from inspection.schemas import InspectionCreate, StationCreate
from inspection.settings import Settings
from servicekit import outbox, standing, tracing
from servicekit.auth import hash_key, new_api_key
from servicekit.problems import Conflict, Forbidden, NotFound, Problem, Unauthorized

SOURCE = "ucx/inspection"
BLOCKED_STATUSES = frozenset({"suspended", "exited", "expired", "rejected"})


def create_station(session: Session, data: StationCreate) -> tuple[Station, str]:
    api_key = new_api_key("ucx_stn")
    with session.begin():
        station = Station(
            id=str(uuid.uuid4()),
            **data.model_dump(),
            api_key_hash=hash_key(api_key),
            status="active",
            created_at=datetime.now(UTC),
        )
        session.add(station)
    return station, api_key


def authenticate_station(session: Session, api_key: str, today: datetime) -> Station:
    station = session.scalar(select(Station).where(Station.api_key_hash == hash_key(api_key)))
    if station is None:
        raise Unauthorized("invalid-credentials", "The station API key is not valid.")
    if station.status != "active":
        raise Forbidden(f"station-{station.status}", f"The station is {station.status}.")
    if station.accreditation_valid_until < today.date():
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
    with session.begin():
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
            select(func.count(), func.max(Inspection.odometer_km)).where(
                Inspection.vin == report.vin
            )
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
        event = new_event(
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
            trace_id=tracing.current_trace_id(),
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
        outbox.add(session, event)
    return inspection
