from __future__ import annotations

from fastapi import APIRouter, Request, status

from inspection import domain, services
from inspection.schemas import (
    FailedItem,
    InspectionCreate,
    InspectionPublic,
    StationCreate,
    StationCreated,
)
from inspection.settings import Settings
from servicekit.auth import bearer
from servicekit.http import AdminDep, SessionDep

router = APIRouter(prefix="/v1")


@router.post("/stations", status_code=status.HTTP_201_CREATED)
def create_station(body: StationCreate, session: SessionDep, _admin: AdminDep) -> StationCreated:
    station, api_key = services.create_station(session, body)
    return StationCreated(id=station.id, name=station.name, api_key=api_key)


@router.post("/inspections", status_code=status.HTTP_201_CREATED)
def post_inspection(
    body: InspectionCreate, session: SessionDep, request: Request
) -> InspectionPublic:
    settings: Settings = request.app.state.settings
    inspection = services.record_inspection(session, settings, bearer(request), body)
    return InspectionPublic(
        id=inspection.id,
        vin=inspection.vin,
        verdict=inspection.verdict,
        first_inspection=inspection.first_inspection,
        certificate_no=inspection.certificate_no,
        valid_until=inspection.valid_until,
        failed_items=[
            FailedItem(code=c, severity=domain.CHECKLIST[c]) for c in inspection.failed_items
        ],
        remarks=inspection.remarks,
        fraud_signals=inspection.fraud_signals,
        inspected_at=inspection.inspected_at,
    )
