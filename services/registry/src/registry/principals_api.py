"""``/v1/principals``: ministry officials manage principals and their tokens; every service
asks ``/v1/principals/introspect`` who holds a token."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from registry import principals
from registry.models import PrincipalRow
from registry.settings import Settings
from servicekit import pagination
from servicekit.clock import clock
from servicekit.http import AuthFirstRoute, SessionDep, answer_once
from servicekit.idempotency import Answer, AttemptDep
from servicekit.officials import Official
from servicekit.problems import Unauthorized
from servicekit.roles import Principal, Role

router = APIRouter(prefix="/v1/principals", tags=["principals"], route_class=AuthFirstRoute)

Province = Annotated[str, StringConstraints(pattern=r"^[1-8][0-9]0000$")]


class PrincipalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    role: Role
    province: Province | None = Field(default=None, description="For role province only.")


class TokenPublic(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class PrincipalPublic(BaseModel):
    id: str
    name: str
    role: Role
    province: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    tokens: list[TokenPublic] = []


class TokenIssued(BaseModel):
    principal: PrincipalPublic
    token: str = Field(description="Shown once: ucx keeps only its SHA-256 digest.")
    expires_at: datetime


class Rotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float | None = Field(
        default=None, ge=0, le=720, description="How long older tokens stay valid (default: "
        "the REGISTRY_PRINCIPAL_ROTATION_OVERLAP_H setting)."
    )  # fmt: skip


class Introspect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class PrincipalOut(BaseModel):
    id: str
    name: str
    role: Role
    province: str | None
    source: str


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _public(session: Session, row: PrincipalRow) -> PrincipalPublic:
    public = PrincipalPublic.model_validate(row, from_attributes=True)
    tokens = [
        TokenPublic.model_validate(t, from_attributes=True)
        for t in principals.tokens(session, row.id)
    ]
    return public.model_copy(update={"tokens": tokens})


def _issued(session: Session, issued: principals.Issued) -> TokenIssued:
    return TokenIssued(
        principal=_public(session, issued.principal),
        token=issued.token,
        expires_at=issued.token_row.expires_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenIssued)
def create_principal(
    body: PrincipalCreate,
    request: Request,
    official: Official("registry.principal.create"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    lifetime = timedelta(days=_settings(request).principal_token_days)

    def unit(session: Session) -> Answer:
        with session.begin():
            issued = principals.create(
                session,
                name=body.name,
                role=body.role,
                province=body.province,
                created_by=official.id,
                now=clock.now(),
                lifetime=lifetime,
            )
            return Answer.of(_issued(session, issued), status=201)

    return answer_once(request, attempt, unit)


@router.get("", response_model=pagination.Page[PrincipalPublic])
def list_principals(
    session: SessionDep,
    _official: Official("registry.principal.read"),  # type: ignore[valid-type]
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = 50,
) -> pagination.Page[PrincipalPublic]:
    rows = principals.listed(session, pagination.decode(cursor), limit)
    return pagination.Page[PrincipalPublic](
        items=[_public(session, r) for r in rows],
        next_cursor=pagination.next_cursor([r.id for r in rows], limit),
    )


@router.get("/{principal_id}", response_model=PrincipalPublic)
def get_principal(
    principal_id: str,
    session: SessionDep,
    _official: Official("registry.principal.read"),  # type: ignore[valid-type]
) -> PrincipalPublic:
    return _public(session, principals.get(session, principal_id))


@router.post(
    "/{principal_id}/rotate", status_code=status.HTTP_201_CREATED, response_model=TokenIssued
)
def rotate_token(
    principal_id: str,
    body: Rotate,
    request: Request,
    _official: Official("registry.principal.rotate"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    settings = _settings(request)
    hours = (
        settings.principal_rotation_overlap_h if body.overlap_hours is None else body.overlap_hours
    )

    def unit(session: Session) -> Answer:
        with session.begin():
            issued = principals.rotate(
                session,
                principal_id,
                now=clock.now(),
                lifetime=timedelta(days=settings.principal_token_days),
                overlap=timedelta(hours=hours),
            )
            return Answer.of(_issued(session, issued), status=201)

    return answer_once(request, attempt, unit)


@router.post("/{principal_id}/revoke", response_model=PrincipalPublic)
def revoke_principal(
    principal_id: str,
    request: Request,
    _official: Official("registry.principal.revoke"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        with session.begin():
            row = principals.revoke(session, principal_id, now=clock.now())
            return Answer.of(_public(session, row))

    return answer_once(request, attempt, unit)


@router.post("/introspect", response_model=PrincipalOut, include_in_schema=False)
async def introspect(body: Introspect, request: Request) -> PrincipalOut:
    """Who holds this ucx token now (the other services ask on each admin call); 401 when
    nobody does. Service to service: not in the OpenAPI document, not on the partner Ingress.
    The token is the secret: this answers nothing its holder could not learn by calling with
    it."""
    found = await LocalDirectory(request.app.state.engine).principal(body.token)
    if found is None:
        raise Unauthorized("invalid-credentials", "The token is not valid.")
    return PrincipalOut(**found.__dict__)


class LocalDirectory:
    """The registry's own directory: its database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def principal(self, token: str) -> Principal | None:
        return await anyio.to_thread.run_sync(self._lookup, token)

    def _lookup(self, token: str) -> Principal | None:
        with Session(self.engine) as session:
            return principals.lookup(session, token, clock.now())
