"""Outbound webhook subscriptions: CRUD, secrets, the delivery log and replay, and the
consumer side that queues one delivery per matching endpoint for every event."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import CloudEvent
from customs import outbound, vault
from customs.models import Delivery, DeliveryAttempt, Subscription, SubscriptionSecret
from customs.settings import Settings
from servicekit.clock import clock
from servicekit.problems import NotFound, Problem

PAYLOAD_LIMIT = 20_000


def _refuse_url(exc: outbound.UrlRefused) -> Problem:
    rule, _, message = str(exc).partition(": ")
    return Problem(
        "webhook-url-refused",
        message,
        status=422,
        errors=[{"field": "url", "rule": rule, "message": message}],
    )


def create(
    session: Session,
    settings: Settings,
    url: str,
    event_types: list[str],
    enterprises: list[str] | None,
) -> tuple[Subscription, str]:
    try:
        outbound.check_url(url, production=settings.environment == "production")
    except outbound.UrlRefused as exc:
        raise _refuse_url(exc) from exc
    now = clock.now()
    with session.begin():
        subscription = Subscription(
            id=str(uuid.uuid4()),
            url=url,
            event_types=sorted(set(event_types)),
            enterprises=sorted(set(enterprises)) if enterprises else None,
            status="active",
            created_at=now,
        )
        session.add(subscription)
        session.flush()
        secret = vault.issue(session, SubscriptionSecret, subscription.id, settings.secret_key, now)
    return subscription, secret


def get(session: Session, subscription_id: str) -> Subscription:
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFound("subscription-not-found", f"No subscription {subscription_id}.")
    return subscription


def list_all(session: Session) -> list[Subscription]:
    return list(session.scalars(select(Subscription).order_by(Subscription.created_at)))


def update(
    session: Session, settings: Settings, subscription_id: str, changes: dict[str, Any]
) -> Subscription:
    if "url" in changes:
        try:
            outbound.check_url(changes["url"], production=settings.environment == "production")
        except outbound.UrlRefused as exc:
            raise _refuse_url(exc) from exc
    with session.begin():
        subscription = get(session, subscription_id)
        for field in ("url", "event_types", "enterprises"):
            if field in changes:
                setattr(subscription, field, changes[field])
        if changes.get("status") == "active":  # re-enable after fixing the endpoint
            subscription.status, subscription.disabled_reason = "active", None
            subscription.failing_since = None
        elif changes.get("status") == "disabled":
            subscription.status, subscription.disabled_reason = "disabled", "disabled by admin"
    return subscription


def delete(session: Session, subscription_id: str) -> None:
    with session.begin():
        subscription = get(session, subscription_id)
        subscription.status, subscription.disabled_reason = "deleted", "deleted by admin"


def rotate_secret(
    session: Session, settings: Settings, subscription_id: str
) -> tuple[str, datetime]:
    """A new secret; deliveries carry both signatures during the overlap window."""
    overlap = timedelta(hours=settings.secret_overlap_hours)
    with session.begin():
        get(session, subscription_id)
        return vault.rotate(
            session, SubscriptionSecret, subscription_id, settings.secret_key, overlap
        )


def _queue(
    session: Session,
    subscription: Subscription,
    event_id: str,
    type_: str,
    data: dict[str, Any],
    now: datetime,
) -> Delivery | None:
    payload = json.dumps(
        {"type": type_, "timestamp": now.isoformat(), "data": data}, separators=(",", ":")
    )[:PAYLOAD_LIMIT]
    delivery_id = f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, f'{subscription.id}/{event_id}').hex}"
    if session.get(Delivery, delivery_id) is not None:
        return None  # the same event again: one delivery per endpoint
    delivery = Delivery(
        id=delivery_id,
        subscription_id=subscription.id,
        event_id=event_id,
        type=type_,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    return delivery


def test_fire(session: Session, subscription_id: str) -> Delivery:
    now = clock.now()
    with session.begin():
        subscription = get(session, subscription_id)
        delivery = _queue(
            session,
            subscription,
            str(uuid.uuid4()),
            "webhook.test",
            {"subscription_id": subscription.id, "message": "ucx test delivery"},
            now,
        )
        assert delivery is not None
    return delivery


def enqueue(session: Session, _data: events.EventData, event: CloudEvent) -> None:
    """Consumer handler: one delivery per active endpoint that wants this event. The consumer
    has parsed the data (an event whose data is not what its type promises is a dead letter,
    never sent to a partner); the payload is the data as it came, with the envelope's id and
    subject."""
    type_ = outbound.webhook_type(event)
    if type_ is None:
        return
    now = clock.now()
    for subscription in session.scalars(
        select(Subscription).where(Subscription.status.in_(("active", "disabled")))
    ):
        if type_ not in subscription.event_types:
            continue
        if subscription.enterprises and event.enterpriseid not in subscription.enterprises:
            continue
        _queue(
            session,
            subscription,
            event.id,
            type_,
            {**event.data, "event_id": event.id, "subject": event.subject},
            now,
        )


def deliveries(
    session: Session, subscription_id: str, limit: int = 100
) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
    get(session, subscription_id)
    rows = list(
        session.scalars(
            select(Delivery)
            .where(Delivery.subscription_id == subscription_id)
            .order_by(Delivery.created_at.desc())
            .limit(limit)
        )
    )
    attempts: dict[str, list[DeliveryAttempt]] = {}
    if rows:
        for attempt in session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in rows]))
            .order_by(DeliveryAttempt.id)
        ):
            attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return [(d, attempts.get(d.id, [])) for d in rows]


def replay(
    session: Session, subscription_id: str, delivery_id: str | None, since: datetime | None
) -> int:
    """Send one message again, or every failed one since a time (same ``webhook-id``)."""
    now = clock.now()
    with session.begin():
        get(session, subscription_id)
        query = select(Delivery).where(Delivery.subscription_id == subscription_id)
        if delivery_id is not None:
            query = query.where(Delivery.id == delivery_id)
        else:
            query = query.where(Delivery.status == "failed")
            if since is not None:
                query = query.where(Delivery.created_at >= since)
        rows = list(session.scalars(query))
        if delivery_id is not None and not rows:
            raise NotFound("delivery-not-found", f"No delivery {delivery_id}.")
        for delivery in rows:
            delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, now
    return len(rows)
