from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from customs import services, subscriptions
from customs.models import Declaration, Subscription
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
from servicekit.http import SessionDep, WriterDep, answer_once
from servicekit.idempotency import Answer, Attempt, AttemptDep
from servicekit.officials import Official
from servicekit.problems import Conflict

router = APIRouter(prefix="/v1")
_messages: TypeAdapter[WebhookMessage] = TypeAdapter(WebhookMessage)

WEBHOOK_HEADERS = [
    {"name": name, "in": "header", "required": True, "description": text, "schema": schema}
    for name, text, schema in (
        (
            "webhook-id",
            "The message's id: a replay with it returns the first answer.",
            {"type": "string", "minLength": 1},
        ),
        (
            "webhook-timestamp",
            "Unix seconds when signed; refused outside 5 minutes.",
            {"type": "string", "pattern": "^[0-9]+$"},
        ),
        (
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, space separated.",
            {"type": "string", "minLength": 1},
        ),
    )
]
"""The Standard Webhooks signature headers, documented (the route reads them from the raw
request: a missing or bad one is the same 401 as a bad signature)."""


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# Every admin POST takes an Idempotency-Key: ``answer_once`` remembers its answer in the
# effect's own transaction (the webhook's key is its ``webhook-id``, remembered likewise).


@router.post("/brokers", status_code=status.HTTP_201_CREATED, response_model=BrokerCreated)
def create_broker(
    body: BrokerCreate,
    request: Request,
    _official: Official("customs.broker.create"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        broker, secret = services.create_broker(session, _settings(request), body)
        return Answer.of(BrokerCreated(id=broker.id, name=broker.name, secret=secret), 201)

    return answer_once(request, attempt, unit)


@router.post(
    "/webhooks/brokers/{broker_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses={401: {"description": "Bad signature or stale timestamp"}},
    openapi_extra={"parameters": WEBHOOK_HEADERS},
)
async def broker_webhook(broker_id: str, request: Request, writer: WriterDep) -> Response:
    """Standard Webhooks: verify the signature over the raw body, remember the ``webhook-id``
    (a replay returns the first answer and changes nothing), apply, answer."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    settings = _settings(request)
    answer = await writer.run(
        lambda s: services.receive_webhook(s, settings, broker_id, body, headers),
        on_integrity_error=lambda _exc: Conflict(
            "webhook-in-flight", "A delivery with this webhook-id is being processed; retry."
        ),
    )
    extra = {"webhook-replayed": "true"} if answer.replayed else {}
    return Response(
        answer.body, status_code=answer.status, media_type=answer.content_type, headers=extra
    )


@router.get("/declarations/{declaration_no}")
def get_declaration(
    declaration_no: str,
    session: SessionDep,
    _official: Official("customs.declaration.read"),  # type: ignore[valid-type]
) -> DeclarationPublic:
    declaration: Declaration = services.get_declaration(session, declaration_no)
    return DeclarationPublic.model_validate(declaration, from_attributes=True)


Rotation = Callable[[Session, Settings, str], tuple[str, datetime]]
ROTATED: dict[str, Any] = {"status_code": status.HTTP_201_CREATED, "response_model": SecretRotated}
"""What a rotation route answers (``_rotate``)."""


def _rotate(request: Request, attempt: Attempt | None, rotate: Rotation, owner: str) -> Response:
    """A signing secret rotated (a broker's or a subscription's): 201, the new secret once."""

    def unit(session: Session) -> Answer:
        secret, until = rotate(session, _settings(request), owner)
        rotated = SecretRotated(secret=secret, previous_secrets_valid_until=until)
        return Answer.of(rotated, 201)

    return answer_once(request, attempt, unit)


@router.post("/brokers/{broker_id}/secrets", **ROTATED)
def rotate_broker_secret(
    broker_id: str,
    request: Request,
    _official: Official("customs.broker.secret-rotate"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    return _rotate(request, attempt, services.rotate_broker_secret, broker_id)


def _subscription(subscription: Subscription) -> SubscriptionPublic:
    return SubscriptionPublic.model_validate(subscription, from_attributes=True)


@router.post(
    "/subscriptions", status_code=status.HTTP_201_CREATED, response_model=SubscriptionCreated
)
def create_subscription(
    body: SubscriptionCreate,
    request: Request,
    _official: Official("customs.subscription.create"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        subscription, secret = subscriptions.create(
            session, _settings(request), body.url, list(body.event_types), body.enterprises
        )
        public = _subscription(subscription).model_dump()
        return Answer.of(SubscriptionCreated(**public, secret=secret), 201)

    return answer_once(request, attempt, unit)


@router.get("/subscriptions")
def list_subscriptions(
    session: SessionDep,
    _official: Official("customs.subscription.read"),  # type: ignore[valid-type]
) -> list[SubscriptionPublic]:
    return [_subscription(s) for s in subscriptions.list_all(session)]


@router.get("/subscriptions/{subscription_id}")
def get_subscription(
    subscription_id: str,
    session: SessionDep,
    _official: Official("customs.subscription.read"),  # type: ignore[valid-type]
) -> SubscriptionPublic:
    return _subscription(subscriptions.get(session, subscription_id))


@router.patch("/subscriptions/{subscription_id}")
def update_subscription(
    subscription_id: str,
    body: SubscriptionUpdate,
    session: SessionDep,
    request: Request,
    _official: Official("customs.subscription.update"),  # type: ignore[valid-type]
) -> SubscriptionPublic:
    changes = body.model_dump(exclude_unset=True)
    subscription = subscriptions.update(session, _settings(request), subscription_id, changes)
    return _subscription(subscription)


@router.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(
    subscription_id: str,
    session: SessionDep,
    _official: Official("customs.subscription.delete"),  # type: ignore[valid-type]
) -> None:
    subscriptions.delete(session, subscription_id)


@router.post("/subscriptions/{subscription_id}/secret", **ROTATED)
def rotate_subscription_secret(
    subscription_id: str,
    request: Request,
    _official: Official("customs.subscription.secret-rotate"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    return _rotate(request, attempt, subscriptions.rotate_secret, subscription_id)


@router.post(
    "/subscriptions/{subscription_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=dict[str, str],
)
def test_fire(
    subscription_id: str,
    request: Request,
    _official: Official("customs.subscription.test"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    def unit(session: Session) -> Answer:
        delivery = subscriptions.test_fire(session, subscription_id)
        fired = {"webhook_id": delivery.id, "status": delivery.status}
        return Answer(202, json.dumps(fired, separators=(",", ":")).encode())

    return answer_once(request, attempt, unit)


@router.get("/subscriptions/{subscription_id}/deliveries")
def list_deliveries(
    subscription_id: str,
    session: SessionDep,
    _official: Official("customs.subscription.read"),  # type: ignore[valid-type]
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


def _replay(
    request: Request,
    attempt: Attempt | None,
    subscription_id: str,
    delivery_id: str | None,
    since: datetime | None,
) -> Response:
    def unit(session: Session) -> Answer:
        queued = subscriptions.replay(session, subscription_id, delivery_id, since)
        return Answer.of(ReplayResult(queued=queued))

    return answer_once(request, attempt, unit)


@router.post(
    "/subscriptions/{subscription_id}/deliveries/{delivery_id}/replay",
    response_model=ReplayResult,
)
def replay_one(
    subscription_id: str,
    delivery_id: str,
    request: Request,
    _official: Official("customs.subscription.replay"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    return _replay(request, attempt, subscription_id, delivery_id, None)


@router.post("/subscriptions/{subscription_id}/replay", response_model=ReplayResult)
def replay_failed(
    subscription_id: str,
    body: ReplayRequest,
    request: Request,
    _official: Official("customs.subscription.replay"),  # type: ignore[valid-type]
    attempt: AttemptDep,
) -> Response:
    return _replay(request, attempt, subscription_id, None, body.since)
