from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from registry import services
from registry.models import Vehicle
from registry.policy import RegistryPolicy
from registry.schemas import (
    BatchResult,
    BatchRow,
    ComplaintCreate,
    ComplaintPublic,
    ComplaintResolve,
    DecisionCreate,
    DecisionPublic,
    EnterpriseCreate,
    EnterprisePublic,
    StatusChangePublic,
    TimelineEvent,
    TimelinePublic,
    VehicleBatch,
    VehicleCreate,
    VehiclePublic,
)
from registry.settings import Settings
from servicekit.auth import bearer, require_admin
from servicekit.clock import clock
from servicekit.http import AdminDep, SessionDep, WriterDep
from servicekit.pagination import MAX_LIMIT, Page

router = APIRouter(prefix="/v1")
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
EnterpriseStatus = Annotated[
    str | None,
    Query(pattern="^(applied|admitted|warned|suspended|exited|rejected|expired)$"),
]
Stage = Annotated[
    str | None,
    Query(
        pattern="^(registered|inspected_passed|inspected_failed|declared|declaration_rejected"
        "|exported|stalled)$"
    ),
]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _policy(request: Request) -> RegistryPolicy:
    policy: RegistryPolicy = request.app.state.policy
    return policy


def _vehicle(request: Request, vehicle: Vehicle) -> VehiclePublic:
    public = VehiclePublic.model_validate(vehicle, from_attributes=True)
    stage = services.visible_stage(_policy(request), vehicle, clock.now())
    return public.model_copy(update={"stage": stage})


@router.post("/enterprises", status_code=status.HTTP_201_CREATED)
def apply(body: EnterpriseCreate, session: SessionDep, request: Request) -> EnterprisePublic:
    enterprise = services.apply(session, _policy(request), body)
    return EnterprisePublic.model_validate(enterprise, from_attributes=True)


@router.get("/enterprises")
def list_enterprises(
    session: SessionDep,
    request: Request,
    status: EnterpriseStatus = None,
    province: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,
    recommended: Annotated[
        str | None,
        Query(
            pattern="^reinstate$",
            description="reinstate: the regulator's review list (admin token required).",
        ),
    ] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[EnterprisePublic]:
    if recommended is not None:
        require_admin(request, _settings(request).admin_token)
    rows, next_cursor = services.list_enterprises(
        session, status, province, cursor, limit, recommended
    )
    items = [EnterprisePublic.model_validate(e, from_attributes=True) for e in rows]
    return Page[EnterprisePublic](items=items, next_cursor=next_cursor)


@router.post("/enterprises/{uscc}/decisions")
def decide(
    uscc: str, body: DecisionCreate, session: SessionDep, request: Request, _admin: AdminDep
) -> DecisionPublic:
    enterprise, api_key = services.decide(session, _policy(request), uscc, body.action, body.reason)
    public = DecisionPublic.model_validate(enterprise, from_attributes=True)
    return public.model_copy(update={"api_key": api_key})


@router.get("/enterprises/{uscc}")
def get_enterprise(uscc: str, session: SessionDep) -> EnterprisePublic:
    enterprise = services.get_enterprise(session, uscc)
    return EnterprisePublic.model_validate(enterprise, from_attributes=True)


@router.get("/enterprises/{uscc}/history")
def history(uscc: str, session: SessionDep) -> list[StatusChangePublic]:
    return [
        StatusChangePublic.model_validate(c, from_attributes=True)
        for c in services.history(session, uscc)
    ]


@router.post("/vehicles", status_code=status.HTTP_201_CREATED, response_model=VehiclePublic)
async def register_vehicle(body: VehicleCreate, request: Request, writer: WriterDep) -> Response:
    settings, policy, key = _settings(request), _policy(request), bearer(request)
    row = await writer.run(
        lambda s: services.register_vehicle(s, settings, policy, key, body),
        on_integrity_error=lambda _exc: services.already_registered(body.vin),
    )
    # stage: just registered, so not stalled; serialised once here (FastAPI would validate
    # the model again before serialising it)
    public = VehiclePublic.model_validate(row)
    return Response(public.model_dump_json(), 201, media_type="application/json")


@router.post("/vehicles:batch", status_code=status.HTTP_207_MULTI_STATUS)
def register_batch(body: VehicleBatch, session: SessionDep, request: Request) -> BatchResult:
    """Up to 500 vehicles: valid rows are committed, invalid rows come back with their errors."""
    rows = services.register_batch(
        session, _settings(request), _policy(request), bearer(request), body.vehicles
    )
    results = [BatchRow(**row) for row in rows]
    created = sum(r.status == "created" for r in results)
    return BatchResult(created=created, rejected=len(results) - created, results=results)


@router.get("/vehicles")
def list_vehicles(
    session: SessionDep,
    request: Request,
    enterprise: Annotated[str | None, Query(max_length=18)] = None,
    stage: Stage = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[VehiclePublic]:
    rows, next_cursor = services.list_vehicles(
        session, _policy(request), enterprise, stage, cursor, limit
    )
    return Page[VehiclePublic](items=[_vehicle(request, v) for v in rows], next_cursor=next_cursor)


@router.get("/vehicles/{vin}")
def get_vehicle(vin: str, session: SessionDep, request: Request) -> VehiclePublic:
    return _vehicle(request, services.get_vehicle(session, vin))


@router.get("/vehicles/{vin}/timeline")
def timeline(vin: str, session: SessionDep, request: Request) -> TimelinePublic:
    vehicle, entries = services.timeline(session, vin)
    return TimelinePublic(
        vin=vehicle.vin,
        stage=services.visible_stage(_policy(request), vehicle, clock.now()),
        events=[
            TimelineEvent(
                id=e.event_id, type=e.type, source=e.source, time=e.time, summary=e.summary
            )
            for e in entries
        ],
    )


@router.post("/enterprises/{uscc}/complaints", status_code=status.HTTP_201_CREATED)
def file_complaint(
    uscc: str, body: ComplaintCreate, session: SessionDep, _admin: AdminDep
) -> ComplaintPublic:
    complaint = services.file_complaint(session, uscc, body)
    return ComplaintPublic.model_validate(complaint, from_attributes=True)


@router.get("/enterprises/{uscc}/complaints")
def list_complaints(uscc: str, session: SessionDep) -> list[ComplaintPublic]:
    return [
        ComplaintPublic.model_validate(c, from_attributes=True)
        for c in services.list_complaints(session, uscc)
    ]


@router.get("/enterprises/{uscc}/complaints/{complaint_id}")
def get_complaint(uscc: str, complaint_id: str, session: SessionDep) -> ComplaintPublic:
    complaint = services.get_complaint(session, uscc, complaint_id)
    return ComplaintPublic.model_validate(complaint, from_attributes=True)


@router.post("/enterprises/{uscc}/complaints/{complaint_id}/resolve")
def resolve_complaint(
    uscc: str, complaint_id: str, body: ComplaintResolve, session: SessionDep, _admin: AdminDep
) -> ComplaintPublic:
    complaint = services.resolve_complaint(session, uscc, complaint_id, body.resolution)
    return ComplaintPublic.model_validate(complaint, from_attributes=True)
