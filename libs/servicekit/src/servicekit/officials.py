"""Officials at the door of every admin operation: who is calling (authentication), may they
do this here (the role matrix of ``servicekit.roles``), and the act recorded in the audit
trail (``servicekit.audit``).

A bearer token is, in this order: ``UCX_ADMIN_TOKEN`` (break-glass, role ``ministry``); a JWT
from the configured OpenID Connect issuer (``servicekit.oidc``); or a ucx principal token,
looked up in the principals directory. The registry holds the principals and looks its own
tokens up in its database; every other service asks the registry
(``POST /v1/principals/introspect``) on each admin call, with no cache, so a revocation
takes effect at once everywhere."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Protocol

import anyio
import httpx
from fastapi import APIRouter, Depends, Form, Query, Request
from sqlalchemy import Engine

from servicekit import audit, pagination
from servicekit.auth import BearerAuth, bearer
from servicekit.oidc import OidcVerifier, looks_like_jwt
from servicekit.problems import Forbidden, Problem, Unauthorized
from servicekit.roles import BREAK_GLASS, OPERATIONS, Principal, authorize

OFFICIAL_TOKEN = BearerAuth(
    "officialToken",
    "An official's token: a ucx principal token, an OpenID Connect token from the "
    "configured issuer, or `UCX_ADMIN_TOKEN` (break-glass, role ministry).",
)


PRINCIPAL_TOKEN_PREFIX = "ucxo_"
"""Principal tokens are ``ucxo_<256 random bits>``: anything else is nobody's, unasked."""


class Directory(Protocol):
    async def principal(self, token: str) -> Principal | None:
        """The active principal holding this token now, or None."""


class RemoteDirectory:
    """The registry's directory over HTTP."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def principal(self, token: str) -> Principal | None:
        try:
            answer = await self.client.post("/v1/principals/introspect", json={"token": token})
        except httpx.HTTPError as exc:
            raise _unavailable(f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code == 200:
            return Principal(**answer.json())
        if answer.status_code in (401, 404):
            return None
        raise _unavailable(f"the registry answered {answer.status_code}")

    async def aclose(self) -> None:
        await self.client.aclose()


def _unavailable(why: str) -> Problem:
    return Problem(
        "directory-unavailable",
        f"The principals directory (the registry) could not be asked: {why}. "
        "UCX_ADMIN_TOKEN and OpenID Connect tokens do not need it.",
        status=503,
        title="Directory unavailable",
    )


async def authenticate(request: Request, token: str) -> Principal:
    """The official the token names; 401 problem+json otherwise."""
    state = request.app.state
    admin_token: str = state.settings.admin_token
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return BREAK_GLASS
    verifier: OidcVerifier | None = getattr(state, "oidc", None)
    if verifier is not None and looks_like_jwt(token):
        principal: Principal = await anyio.to_thread.run_sync(verifier.verify, token)
        return principal
    directory: Directory | None = getattr(state, "directory", None)
    is_principal_token = token.startswith(PRINCIPAL_TOKEN_PREFIX)
    found = await directory.principal(token) if directory and is_principal_token else None
    if found is None:
        raise Unauthorized("invalid-credentials", "The token is not valid.")
    return found


async def admit(request: Request, token: str, operation: str) -> Principal:
    """Authenticate, authorize and begin the audited act; a refusal is recorded (403)."""
    principal = await authenticate(request, token)
    op = OPERATIONS[operation]
    act = audit.Act(principal, op.name, request.method, request.url.path, op.write)
    uscc = request.path_params.get(op.scope) if op.scope else None
    try:
        authorize(principal, op, uscc)
    except Forbidden:
        engine: Engine = request.app.state.engine
        await anyio.to_thread.run_sync(audit.record_denied, engine, act, 403)
        raise
    request.state.act = act
    return principal


Dependency = Callable[..., Awaitable[Principal | None]]


def _admitting(operation: str, dependency: Dependency, **tags: str) -> Dependency:
    """``dependency`` tagged with its operation (``operation_of``); an operation without a row
    in ``roles.OPERATIONS`` fails where the route is declared, at import."""
    if operation not in OPERATIONS:
        raise KeyError(f"{operation} has no row in servicekit.roles.OPERATIONS")
    for name, value in {"operation": operation, **tags}.items():
        setattr(dependency, name, value)
    return dependency


def Official(operation: str) -> Any:
    """``official: Official("registry.enterprise.decide")``: the calling official, admitted
    for that operation."""
    return Annotated[Principal, Depends(_dependency(operation))]


def _dependency(operation: str) -> Dependency:
    async def official(
        request: Request, token: Annotated[str, Depends(OFFICIAL_TOKEN)]
    ) -> Principal:
        return await admit(request, token, operation)

    return _admitting(operation, official)


def FormOfficial(operation: str) -> Any:
    """``Official`` for an HTML form (a browser cannot send a header): the token comes from
    the form's ``token`` field, or else the Authorization header."""

    async def official(
        request: Request, token: Annotated[str | None, Form(max_length=4096)] = None
    ) -> Principal:
        return await admit(request, token or bearer(request), operation)

    return Annotated[Principal, Depends(_admitting(operation, official))]


def OfficialIf(operation: str, query: str) -> Any:
    """A public read that a query parameter widens: with ``?{query}=...`` the caller must be an
    official admitted for ``operation``; without it, anyone (None). Declare
    ``openapi_extra={"security": OFFICIAL_OPTIONAL}`` on the route."""

    async def official(request: Request) -> Principal | None:
        if request.query_params.get(query) is None:
            return None
        return await admit(request, bearer(request), operation)

    return Annotated[Principal | None, Depends(_admitting(operation, official, when_query=query))]


OFFICIAL_OPTIONAL: list[dict[str, list[str]]] = [{}, {"officialToken": []}]
"""An operation's ``security`` when an official's token only widens it (``OfficialIf``)."""


def operation_of(dependency: object) -> str | None:
    """The operation a route's dependency admits for (the role matrix test reads it)."""
    return getattr(dependency, "operation", None)


AuditText = Annotated[str | None, Query(max_length=500)]


def audit_router(service: str) -> APIRouter:
    """``GET /v1/audit`` for ministry and auditor officials."""
    api = APIRouter(prefix="/v1", tags=["audit"])
    reader = Depends(_dependency(f"{service}.audit.read"))

    @api.get("/audit", response_model=pagination.Page[audit.AuditEntry])
    def read_audit(
        request: Request,
        _official: Principal = reader,
        actor: AuditText = None,
        target: AuditText = None,
        from_: Annotated[datetime | None, Query(alias="from")] = None,
        to: datetime | None = None,
        cursor: AuditText = None,
        limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = 50,
    ) -> pagination.Page[audit.AuditEntry]:
        return audit.entries(
            request.app.state.engine,
            actor=actor,
            target=target,
            since=from_,
            until=to,
            cursor=cursor,
            limit=limit,
        )

    return api
