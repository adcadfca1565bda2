from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

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
from servicekit.auth import BearerAuth
from servicekit.clock import clock
from servicekit.http import AuthFirstRoute, SessionDep, WriterDep, answer_once
from servicekit.idempotency import Answer, AttemptDep
from servicekit.officials import OFFICIAL_OPTIONAL, Official, OfficialIf
from servicekit.pagination import MAX_LIMIT, Page
from servicekit.partnerkeys import partner_key

router = APIRouter(prefix="/v1", route_class=AuthFirstRoute)
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


ENTERPRISE_KEY = BearerAuth("enterpriseKey", "An enterprise's API key (shown once, on approval).")
EnterpriseKey = Annotated[str, Depends(partner_key(ENTERPRISE_KEY, services.judge_enterprise_key))]
"""The caller's API key, judged before the body: 401/403 first, whatever the body."""


def _vehicle(request: Request, vehicle: Vehicle) -> VehiclePublic:
    public = VehiclePublic.model_validate(vehicle, from_attributes=True)
    stage = services.visible_stage(_policy(request), vehicle, clock.now())
    return public.model_copy(update={"stage": stage})


@router.post("/enterprises", status_code=status.HTTP_201_CREATED, response_model=EnterprisePublic)
def apply(body: EnterpriseCreate, request: Request, attempt: AttemptDep) -> Response:
    def unit(session: Session) -> Answer:
        enterprise = services.apply(session, _policy(request), body)
        return Answer.of(EnterprisePublic.model_validate(enterprise, from_attributes=True), 201)

    return answer_once(request, attempt, unit)


@router.get("/enterprises", openapi_extra={"security": OFFICIAL_OPTIONAL})
def list_enterprises(
    session: SessionDep,
    _reviewer: OfficialIf("registry.enterprise.review-list", "recommended"),  # type: ignore[valid-type]
    status: EnterpriseStatus = None,
    province: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,
    recommended: Annotated[
        str | None,
        Query(
            pattern="^reinstate$",
            description="reinstate: the regulator's review list (an official's token required).",
        ),
    ] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[EnterprisePublic]:
    rows, next_cursor = services.list_enterprises(
        session, status, province, cursor, limit, recommended
    )
    items = [EnterprisePublic.model_validate(e, from_attributes=True) for e in rows]
    return Page[EnterprisePublic](items=items, next_cursor=next_cursor)


@router.post("/enterprises/{uscc}/decisions", response_model=DecisionPublic)
def decide(
    uscc: str,
    body: DecisionCreate,
    request: Request,
    official: Official("registry.enterprise.decide"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        policy = _policy(request)
        enterprise, api_key = services.decide(
            session, policy, uscc, body.action, body.reason, official
        )
        public = DecisionPublic.model_validate(enterprise, from_attributes=True)
        return Answer.of(public.model_copy(update={"api_key": api_key}))

    return answer_once(request, attempt, unit)


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


def _registered(row: dict[str, Any]) -> Answer:
    # stage: just registered, so not stalled; serialised once here (FastAPI would validate
    # the model again before serialising it)
    return Answer.of(VehiclePublic.model_validate(row), 201)


@router.post("/vehicles", status_code=status.HTTP_201_CREATED, response_model=VehiclePublic)
async def register_vehicle(
    body: VehicleCreate,
    request: Request,
    writer: WriterDep,
    key: EnterpriseKey,
    attempt: AttemptDep,
) -> Response:
    settings, policy = _settings(request), _policy(request)
    answer = await writer.run_idempotent(
        attempt,
        lambda s: services.register_vehicle(s, settings, policy, key, body),
        _registered,
        on_integrity_error=lambda _exc: services.already_registered(body.vin),
    )
    return answer.response()


@router.post(
    "/vehicles:batch", status_code=status.HTTP_207_MULTI_STATUS, response_model=BatchResult
)
async def register_batch(
    body: VehicleBatch,
    request: Request,
    writer: WriterDep,
    key: EnterpriseKey,
    attempt: AttemptDep,
) -> Response:
    """Up to 500 vehicles: valid rows are committed, invalid rows come back with the problem
    a single registration of the row would get (type, detail, link)."""
    settings, policy = _settings(request), _policy(request)
    answer = await writer.run_idempotent(
        attempt,
        lambda s: services.register_batch(s, settings, policy, key, body.vehicles),
        _batch_answer,
    )
    return answer.response()


def _batch_answer(rows: list[dict[str, Any]]) -> Answer:
    results = [BatchRow(**row) for row in rows]
    created = sum(r.status == "created" for r in results)
    return Answer.of(
        BatchResult(created=created, rejected=len(results) - created, results=results), 207
    )


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


@router.post(
    "/enterprises/{uscc}/complaints",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintPublic,
)
def file_complaint(
    uscc: str,
    body: ComplaintCreate,
    request: Request,
    _official: Official("registry.complaint.file"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        complaint = services.file_complaint(session, uscc, body)
        return Answer.of(ComplaintPublic.model_validate(complaint, from_attributes=True), 201)

    return answer_once(request, attempt, unit)


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


@router.post(
    "/enterprises/{uscc}/complaints/{complaint_id}/resolve", response_model=ComplaintPublic
)
def resolve_complaint(
    uscc: str,
    complaint_id: str,
    body: ComplaintResolve,
    request: Request,
    _official: Official("registry.complaint.resolve"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        complaint = services.resolve_complaint(session, uscc, complaint_id, body.resolution)
        return Answer.of(ComplaintPublic.model_validate(complaint, from_attributes=True))

    return answer_once(request, attempt, unit)
