"""The outbound webhook sender: claims due deliveries from the database, signs them
(Standard Webhooks, every active secret), posts them with httpx, records every attempt and
schedules the next. Deliveries live in the database, so they survive restarts; a crash
between sending and recording re-sends with the same ``webhook-id`` (at least once)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from customs import outbound, vault
from customs.models import Delivery, DeliveryAttempt, Subscription, SubscriptionSecret
from customs.settings import Settings
from servicekit.clock import clock
from servicekit.db import session_factory

log = structlog.get_logger("customs.delivery")
OUTCOMES = Counter("ucx_webhook_deliveries_total", "Webhook delivery attempts", ["outcome"])
LATENCY = Histogram("ucx_webhook_delivery_seconds", "Webhook delivery attempt latency")


@dataclass(frozen=True)
class Due:
    id: str
    subscription_id: str
    url: str
    payload: str
    secrets: list[str]


@dataclass(frozen=True)
class Result:
    due: Due
    status_code: int | None
    error: str | None
    latency_ms: float
    retry_after: str | None


class Deliverer:
    def __init__(
        self, engine: Engine, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.sessions = session_factory(engine)
        self.client = httpx.AsyncClient(
            timeout=settings.delivery_timeout_s,
            follow_redirects=False,  # 3xx is a failure (Standard Webhooks)
            transport=transport,
            headers={"user-agent": "ucx-customs-webhooks/1"},
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def run_once(self, now: datetime | None = None) -> int:
        """One round: every due delivery, concurrently. Returns how many were attempted."""
        now = now or clock.now()
        due = await asyncio.to_thread(self._claim, now)
        if not due:
            return 0
        results = await asyncio.gather(*(self._send(d) for d in due))
        await asyncio.to_thread(self._record, results, now)
        return len(due)

    def _claim(self, now: datetime) -> list[Due]:
        """Take due deliveries with a lease (pushed past the timeout) so that another sender,
        or this one after a restart, does not take them again meanwhile."""
        lease = now + timedelta(seconds=self.settings.delivery_timeout_s * 2 + 5)
        with self.sessions() as session, session.begin():
            rows = session.execute(
                select(Delivery, Subscription)
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(
                    Delivery.status == "pending",
                    Delivery.next_attempt_at <= now,
                    Subscription.status == "active",
                )
                .order_by(Delivery.next_attempt_at)
                .limit(self.settings.delivery_batch)
                .with_for_update(skip_locked=True, of=Delivery)
            ).all()
            secrets = _active_secrets(session, {s.id for _, s in rows}, now, self.settings)
            claimed = []
            for delivery, subscription in rows:
                delivery.next_attempt_at = lease
                claimed.append(
                    Due(
                        delivery.id,
                        subscription.id,
                        subscription.url,
                        delivery.payload,
                        secrets.get(subscription.id, []),
                    )
                )
            return claimed

    async def _send(self, due: Due) -> Result:
        # The signature's timestamp is wall time on the wire, whatever clock schedules the
        # attempt: receivers judge it against their own wall clocks (Standard Webhooks).
        signed_at = datetime.fromtimestamp(time.time(), UTC)
        signatures = " ".join(Webhook(s).sign(due.id, signed_at, due.payload) for s in due.secrets)
        headers = {
            "webhook-id": due.id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signatures,
            "content-type": "application/json",
        }
        started = time.perf_counter()
        try:
            response = await self.client.post(due.url, content=due.payload, headers=headers)
            code, error, retry_after = (
                response.status_code,
                None,
                response.headers.get("retry-after"),
            )
        except httpx.HTTPError as exc:
            code, error, retry_after = None, f"{type(exc).__name__}: {exc}"[:500], None
        latency = time.perf_counter() - started
        LATENCY.observe(latency)
        return Result(due, code, error, latency * 1000, retry_after)

    def _record(self, results: list[Result], now: datetime) -> None:
        with self.sessions() as session, session.begin():
            for result in results:
                self._record_one(session, result, now)

    def _record_one(self, session: Session, result: Result, now: datetime) -> None:
        delivery = session.get(Delivery, result.due.id)
        subscription = session.get(Subscription, result.due.subscription_id)
        if delivery is None or subscription is None:
            return
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=result.status_code,
                error=result.error,
                latency_ms=round(result.latency_ms, 2),
            )
        )
        delivery.attempts += 1
        code = result.status_code
        if code is not None and 200 <= code < 300:
            OUTCOMES.labels("delivered").inc()
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                "delivered",
                now,
                None,
            )
            subscription.failing_since = None
            return
        if code == 410:
            OUTCOMES.labels("gone").inc()
            delivery.status, delivery.next_attempt_at = "failed", None
            _disable(subscription, "the endpoint answered 410 Gone")
            return
        OUTCOMES.labels("failed").inc()
        subscription.failing_since = subscription.failing_since or now
        retry_after = outbound.retry_after_seconds(result.retry_after, now)
        delivery.next_attempt_at = outbound.next_attempt_at(
            self.settings.delivery_schedule_s, delivery.attempts, now, retry_after
        )
        if delivery.next_attempt_at is None:
            delivery.status = "failed"
        failing_for = now - subscription.failing_since
        if failing_for >= timedelta(days=self.settings.disable_after_failing_days):
            _disable(subscription, f"every delivery failed for {failing_for.days} days")


class DeliveryTimer:
    """The worker's delivery timer: a :class:`Deliverer` on the worker's engine, made at the
    first tick (its client belongs to the worker's loop) and closed when the worker stops."""

    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.deliverer: Deliverer | None = None

    async def tick(self, engine: Engine) -> None:
        if self.deliverer is None:
            self.deliverer = Deliverer(engine, self.settings, self.transport)
        while await self.deliverer.run_once() >= self.settings.delivery_batch:
            pass  # a full batch: more may be due at once

    async def close(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.close()


def _disable(subscription: Subscription, reason: str) -> None:
    if subscription.status != "disabled":
        subscription.status, subscription.disabled_reason = "disabled", reason
        log.warning("webhook endpoint disabled", subscription_id=subscription.id, reason=reason)


def _active_secrets(
    session: Session, subscription_ids: set[str], now: datetime, settings: Settings
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if not subscription_ids:
        return out
    for secret in session.scalars(
        select(SubscriptionSecret)
        .where(SubscriptionSecret.subscription_id.in_(subscription_ids))
        .order_by(SubscriptionSecret.created_at.desc())
    ):
        if secret.expires_at is None or secret.expires_at > now:
            out.setdefault(secret.subscription_id, []).append(
                vault.unseal(secret.secret_encrypted, settings.secret_key)
            )
    return out
