from __future__ import annotations

from fastapi import APIRouter, Request, status

from registry import services
from registry.schemas import (
    DecisionCreate,
    DecisionPublic,
    EnterpriseCreate,
    EnterprisePublic,
    TimelineEvent,
    TimelinePublic,
    VehicleCreate,
    VehiclePublic,
)
from registry.settings import Settings
from servicekit.auth import bearer
from servicekit.http import AdminDep, SessionDep

router = APIRouter(prefix="/v1")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/enterprises", status_code=status.HTTP_201_CREATED)
def apply(body: EnterpriseCreate, session: SessionDep, request: Request) -> EnterprisePublic:
    enterprise = services.apply(session, _settings(request), body)
    return EnterprisePublic.model_validate(enterprise, from_attributes=True)


@router.post("/enterprises/{uscc}/decisions")
def decide(
    uscc: str, body: DecisionCreate, session: SessionDep, request: Request, _admin: AdminDep
) -> DecisionPublic:
    enterprise, api_key = services.decide(
        session, _settings(request), uscc.strip().upper(), body.action, body.reason
    )
    public = DecisionPublic.model_validate(enterprise, from_attributes=True)
    return public.model_copy(update={"api_key": api_key})


@router.get("/enterprises/{uscc}")
def get_enterprise(uscc: str, session: SessionDep) -> EnterprisePublic:
    enterprise = services.get_enterprise(session, uscc.strip().upper())
    return EnterprisePublic.model_validate(enterprise, from_attributes=True)


@router.post("/vehicles", status_code=status.HTTP_201_CREATED)
def register_vehicle(body: VehicleCreate, session: SessionDep, request: Request) -> VehiclePublic:
    vehicle = services.register_vehicle(session, _settings(request), bearer(request), body)
    return VehiclePublic.model_validate(vehicle, from_attributes=True)


@router.get("/vehicles/{vin}")
def get_vehicle(vin: str, session: SessionDep) -> VehiclePublic:
    return VehiclePublic.model_validate(services.get_vehicle(session, vin), from_attributes=True)


@router.get("/vehicles/{vin}/timeline")
def timeline(vin: str, session: SessionDep) -> TimelinePublic:
    vehicle, entries = services.timeline(session, vin)
    return TimelinePublic(
        vin=vehicle.vin,
        stage=vehicle.stage,
        events=[
            TimelineEvent(
                id=e.event_id, type=e.type, source=e.source, time=e.time, summary=e.summary
            )
            for e in entries
        ],
    )
