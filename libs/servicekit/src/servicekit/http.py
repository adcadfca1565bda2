"""The FastAPI app every service starts from: errors, limits, tracing, idempotency, and the
ops endpoints ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import timedelta
from typing import Annotated, Any

import anyio
import httpx
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import audit, idempotency, officials, problem_http, tracing
from servicekit.db import make_engine, session_factory
from servicekit.idempotency import IdempotencyMiddleware
from servicekit.idempotency import answer_once as _answer_once
from servicekit.oidc import OidcConfig, OidcVerifier
from servicekit.roles import OPERATIONS
from servicekit.settings import BaseServiceSettings
from servicekit.writer import Writer

Check = Callable[[], None]
READY = Gauge("ucx_ready", "1 while the readiness check passes, 0 when it fails", ["check"])


def check_database(engine: Engine) -> Check:
    def check() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return check


def check_broker(bootstrap_servers: str) -> Check:
    """A TCP connect to any bootstrap server: cheap, and enough to tell 'down' from 'up'."""

    def check() -> None:
        errors = []
        for server in bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=1.0).close()
                return
            except OSError as exc:
                errors.append(f"{server}: {exc}")
        raise ConnectionError("; ".join(errors))

    return check


async def run_checks(checks: dict[str, tuple[Check, bool]]) -> tuple[int, dict[str, Any]]:
    """Each check -> status and latency; 503 when a critical one fails."""
    results = []
    ready = True
    for name, (check, critical) in checks.items():
        started = time.perf_counter()
        try:
            await anyio.to_thread.run_sync(check)
            status, error = "ok", None
        except Exception as exc:  # noqa: BLE001 - a failed check is data, not an error
            status, error = "down", f"{type(exc).__name__}: {exc}"[:300]
            ready = ready and not critical
        READY.labels(name).set(1 if status == "ok" else 0)
        results.append(
            {
                "name": name,
                "status": status,
                "critical": critical,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                **({"error": error} if error else {}),
            }
        )
    overall = "ok" if all(r["status"] == "ok" for r in results) else "degraded"
    return (200 if ready else 503), {"status": overall if ready else "down", "checks": results}


class EdgeMiddleware:
    """What every request gets first, in one pass (each ASGI layer costs per request):
    a 413 for bodies over the limit, declared or streamed; the caller's W3C trace continued,
    or one started, and echoed back as ``x-trace-id``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> ASGIApp:
        return problem_http.problem_response(
            413,
            "payload-too-large",
            "Payload too large",
            f"Request bodies are limited to {self.max_bytes} bytes.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = None
        for k, v in scope["headers"]:
            if k == b"content-length" and v.isdigit() and int(v) > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            if k == b"traceparent":
                parent = v.decode("latin-1")
        trace_header = (b"x-trace-id", tracing.begin(parent).encode())
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def edge_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", ()), trace_header]}
            await send(message)

        try:
            await self.app(scope, limited_receive, edge_send)
        except _TooLarge:
            if not started:
                await self._too_large()(scope, receive, send)


class _TooLarge(Exception):
    pass


async def prune_answers(engine: Engine, settings: BaseServiceSettings) -> None:
    """Every ``idempotency_prune_interval_s``: forget remembered answers older than
    ``idempotency_retention_h`` (a retry after that runs as a new request)."""
    log = structlog.get_logger("servicekit.idempotency")
    retention = timedelta(hours=settings.idempotency_retention_h)
    while True:
        await asyncio.sleep(settings.idempotency_prune_interval_s)
        try:
            pruned = await anyio.to_thread.run_sync(idempotency.prune, engine, retention)
        except Exception:
            log.exception("pruning idempotency answers failed")
            continue
        if pruned:
            log.info("idempotency answers pruned", count=pruned)


def create_service_app(
    settings: BaseServiceSettings,
    *,
    title: str,
    description: str = "",
    routers: Sequence[APIRouter] = (),
    extra_checks: dict[str, tuple[Check, bool]] | None = None,
    gauges: Sequence[Callable[[Engine], None]] = (),
) -> FastAPI:
    """Nothing connects here: the engine connects lazily and is disposed on shutdown."""
    engine = make_engine(settings.database_url)
    writer = Writer(engine)
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=_lifespan(settings, engine, writer),
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.writer = writer
    _add_officials(app, settings)
    problem_http.install(app)
    problem_http.document_problems(app)
    # The broker is reported but not critical for an API: the outbox absorbs an outage.
    checks: dict[str, tuple[Check, bool]] = {
        "database": (check_database(engine), True),
        "broker": (check_broker(settings.kafka_bootstrap_servers), False),
        **(extra_checks or {}),
    }
    _add_ops_endpoints(app, settings, checks, gauges)
    for router in routers:
        app.include_router(router)
    if f"{settings.service_name}.audit.read" in OPERATIONS:  # a service of the role matrix
        app.include_router(officials.audit_router(settings.service_name))
    app.add_middleware(IdempotencyMiddleware, engine=engine, routes=app.routes)
    app.add_middleware(EdgeMiddleware, max_bytes=settings.max_body_bytes)
    return app


def _add_officials(app: FastAPI, settings: BaseServiceSettings) -> None:
    """The principals directory (the registry's own replaces it with its database) and, when
    an issuer is configured, the OpenID Connect verifier."""
    app.state.directory = officials.RemoteDirectory(
        httpx.AsyncClient(base_url=settings.registry_url, timeout=5.0)
    )
    app.state.oidc = (
        OidcVerifier(
            OidcConfig(
                issuer=settings.oidc_issuer,
                audience=settings.oidc_audience,
                role_claim=settings.oidc_role_claim,
                province_claim=settings.oidc_province_claim,
                name_claim=settings.oidc_name_claim,
                refresh_cooldown_s=settings.oidc_jwks_refresh_cooldown_s,
            )
        )
        if settings.oidc_issuer
        else None
    )


def _lifespan(
    settings: BaseServiceSettings, engine: Engine, writer: Writer
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The writer and the answers' pruning run while the app serves; the engine is disposed
    after them."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        pruning = asyncio.create_task(prune_answers(engine, settings))
        yield
        pruning.cancel()
        with suppress(asyncio.CancelledError):
            await pruning
        writer.stop()
        directory = getattr(_app.state, "directory", None)
        if isinstance(directory, officials.RemoteDirectory):
            await directory.aclose()
        engine.dispose()

    return lifespan


def _add_ops_endpoints(
    app: FastAPI,
    settings: BaseServiceSettings,
    checks: dict[str, tuple[Check, bool]],
    gauges: Sequence[Callable[[Engine], None]],
) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics`` (left out of the OpenAPI document), and the
    request metrics of every other route."""
    engine: Engine = app.state.engine

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        status, body = await run_checks(checks)
        return JSONResponse(body, status_code=status)

    Instrumentator(
        should_group_status_codes=True, excluded_handlers=["/metrics", "/healthz", "/readyz"]
    ).instrument(app, metric_namespace="ucx")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Gauges read from the database (``gauges``) are refreshed at scrape time."""
        for refresh in gauges:
            try:
                refresh(engine)
            except Exception:  # noqa: BLE001 - a scrape must not fail for one gauge
                structlog.get_logger("servicekit.http").exception("gauge refresh failed")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class AuthFirstRoute(APIRoute):
    """The caller is judged before the body even when the body is not JSON at all: FastAPI
    decodes JSON before it solves a route's dependencies (the credential checks), so on a
    decode error the request is solved once more with no body; a 401/403 raised by a
    dependency wins, else the decode error stands. The endpoint never runs for the probe
    (its required body is missing)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        probes = self.body_field is not None and self.body_field.field_info.is_required()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                if not probes or all(e.get("type") != "json_invalid" for e in exc.errors()):
                    raise
                with suppress(RequestValidationError):  # the caller is known: exc stands
                    await handle(Request(request.scope, _no_body))
                raise

        return handler


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def get_session(request: Request) -> Any:
    """The request's session; its first commit records an official's act (servicekit.audit)."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        yield audit.watch(session, lambda: getattr(request.state, "act", None))


SessionDep = Annotated[Session, Depends(get_session)]


async def get_writer(request: Request) -> Writer:
    """Async on purpose: a sync dependency would send every request through the thread pool."""
    writer: Writer = request.app.state.writer
    return writer


WriterDep = Annotated[Writer, Depends(get_writer)]


def answer_once(
    request: Request, attempt: idempotency.Attempt | None, unit: idempotency.Unit
) -> Response:
    """A POST outside the writer (its service opens its own transaction): ``unit``'s answer,
    remembered with its effect when the request carries an Idempotency-Key."""
    engine = request.app.state.engine
    return _answer_once(
        engine, attempt, unit, lambda: getattr(request.state, "act", None)
    ).response()
