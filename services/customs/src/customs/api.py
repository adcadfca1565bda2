from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from customs import services, subscriptions
from customs.models import Broker, Declaration, Subscription
from customs.schemas import (
    AttemptPublic,
    BrokerCreate,
    BrokerCreated,
    DeclarationPublic,
    DeliveryPublic,
    ReplayRequest,
    ReplayResult,
    SecretRotated,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
    SubscriptionUpdate,
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


@router.post("/brokers/{broker_id}/secrets", status_code=status.HTTP_201_CREATED)
def rotate_broker_secret(
    broker_id: str, session: SessionDep, request: Request, _admin: AdminDep
) -> SecretRotated:
    secret, until = services.rotate_broker_secret(session, request.app.state.settings, broker_id)
    return SecretRotated(secret=secret, previous_secrets_valid_until=until)


def _subscription(subscription: Subscription) -> SubscriptionPublic:
    return SubscriptionPublic.model_validate(subscription, from_attributes=True)


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED)
def create_subscription(
    body: SubscriptionCreate, session: SessionDep, request: Request, _admin: AdminDep
) -> SubscriptionCreated:
    subscription, secret = subscriptions.create(
        session, request.app.state.settings, body.url, list(body.event_types), body.enterprises
    )
    return SubscriptionCreated(**_subscription(subscription).model_dump(), secret=secret)


@router.get("/subscriptions")
def list_subscriptions(session: SessionDep, _admin: AdminDep) -> list[SubscriptionPublic]:
    return [_subscription(s) for s in subscriptions.list_all(session)]


@router.get("/subscriptions/{subscription_id}")
def get_subscription(
    subscription_id: str, session: SessionDep, _admin: AdminDep
) -> SubscriptionPublic:
    return _subscription(subscriptions.get(session, subscription_id))


@router.patch("/subscriptions/{subscription_id}")
def update_subscription(
    subscription_id: str,
    body: SubscriptionUpdate,
    session: SessionDep,
    request: Request,
    _admin: AdminDep,
) -> SubscriptionPublic:
    changes = body.model_dump(exclude_unset=True)
    subscription = subscriptions.update(
        session, request.app.state.settings, subscription_id, changes
    )
    return _subscription(subscription)


@router.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(subscription_id: str, session: SessionDep, _admin: AdminDep) -> None:
    subscriptions.delete(session, subscription_id)


@router.post("/subscriptions/{subscription_id}/secret", status_code=status.HTTP_201_CREATED)
def rotate_subscription_secret(
    subscription_id: str, session: SessionDep, request: Request, _admin: AdminDep
) -> SecretRotated:
    secret, until = subscriptions.rotate_secret(
        session, request.app.state.settings, subscription_id
    )
    return SecretRotated(secret=secret, previous_secrets_valid_until=until)


@router.post("/subscriptions/{subscription_id}/test", status_code=status.HTTP_202_ACCEPTED)
def test_fire(subscription_id: str, session: SessionDep, _admin: AdminDep) -> dict[str, str]:
    delivery = subscriptions.test_fire(session, subscription_id)
    return {"webhook_id": delivery.id, "status": delivery.status}


@router.get("/subscriptions/{subscription_id}/deliveries")
def list_deliveries(
    subscription_id: str, session: SessionDep, _admin: AdminDep
) -> list[DeliveryPublic]:
    return [
        DeliveryPublic(
            id=d.id,
            type=d.type,
            status=d.status,
            attempts=[AttemptPublic.model_validate(a, from_attributes=True) for a in attempts],
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )
        for d, attempts in subscriptions.deliveries(session, subscription_id)
    ]


@router.post("/subscriptions/{subscription_id}/deliveries/{delivery_id}/replay")
def replay_one(
    subscription_id: str, delivery_id: str, session: SessionDep, _admin: AdminDep
) -> ReplayResult:
    return ReplayResult(queued=subscriptions.replay(session, subscription_id, delivery_id, None))


@router.post("/subscriptions/{subscription_id}/replay")
def replay_failed(
    subscription_id: str, body: ReplayRequest, session: SessionDep, _admin: AdminDep
) -> ReplayResult:
    return ReplayResult(queued=subscriptions.replay(session, subscription_id, None, body.since))
