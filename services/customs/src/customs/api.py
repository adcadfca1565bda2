from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from customs import services
from customs.models import Broker, Declaration
from customs.schemas import (
    BrokerCreate,
    BrokerCreated,
    DeclarationPublic,
    WebhookAccepted,
    WebhookMessage,
)
from customs.settings import Settings
from servicekit import idempotency
from servicekit.http import AdminDep, SessionDep
from servicekit.problems import Problem, field_errors, problem_response

router = APIRouter(prefix="/v1")
_messages: TypeAdapter[WebhookMessage] = TypeAdapter(WebhookMessage)


@router.post("/brokers", status_code=status.HTTP_201_CREATED)
def create_broker(
    body: BrokerCreate, session: SessionDep, request: Request, _admin: AdminDep
) -> BrokerCreated:
    broker, secret = services.create_broker(session, request.app.state.settings, body)
    return BrokerCreated(id=broker.id, name=broker.name, secret=secret)


@router.post(
    "/webhooks/brokers/{broker_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses={401: {"description": "Bad signature or stale timestamp"}},
)
async def broker_webhook(broker_id: str, request: Request) -> Response:
    """Standard Webhooks: verify the signature over the raw body, remember the ``webhook-id``
    (a replay returns the first answer and changes nothing), apply, answer."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await anyio.to_thread.run_sync(_receive, request, broker_id, body, headers)


def _receive(request: Request, broker_id: str, body: bytes, headers: dict[str, str]) -> Response:
    settings: Settings = request.app.state.settings
    engine = request.app.state.engine
    sessions = request.app.state.sessions
    try:
        with sessions() as session:  # closed at once: SQLite holds its write lock per session
            broker = services.verify_webhook(session, settings, broker_id, body, headers)
    except Problem as exc:
        return problem_response(exc.status, exc.type_, exc.title, exc.detail)
    scope, webhook_id = f"webhook:{broker.id}", headers["webhook-id"]
    stored = idempotency.lookup(engine, scope, webhook_id)
    if stored is None and idempotency.claim(engine, scope, webhook_id, idempotency.digest(body)):
        try:
            with sessions() as session:
                response = _apply(session, settings, broker, webhook_id, body)
        except BaseException:
            idempotency.release(engine, scope, webhook_id)  # let the broker's retry in
            raise
        idempotency.complete(
            engine,
            scope,
            webhook_id,
            response.status_code,
            response.headers.get("content-type", "application/json"),
            bytes(response.body),
        )
        return response
    stored = stored or idempotency.lookup(engine, scope, webhook_id)
    if stored is None or stored.status_code is None:
        return problem_response(
            409,
            "webhook-in-flight",
            "Webhook in flight",
            "A delivery with this webhook-id is still being processed; retry later.",
        )
    return Response(
        stored.body,
        status_code=stored.status_code,
        media_type=stored.content_type,
        headers={"webhook-replayed": "true"},
    )


def _apply(
    session: Session, settings: Settings, broker: Broker, webhook_id: str, body: bytes
) -> JSONResponse:
    try:
        message = _messages.validate_json(body)
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        return problem_response(
            422,
            "validation-error",
            "Invalid webhook message",
            "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
            errors=errors,
        )
    try:
        accepted = services.handle_message(session, settings, broker, webhook_id, message)
    except Problem as exc:
        return problem_response(exc.status, exc.type_, exc.title, exc.detail, **exc.extra)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)


@router.get("/declarations/{declaration_no}")
def get_declaration(
    declaration_no: str, session: SessionDep, _admin: AdminDep
) -> DeclarationPublic:
    declaration: Declaration = services.get_declaration(session, declaration_no)
    return DeclarationPublic.model_validate(declaration, from_attributes=True)
