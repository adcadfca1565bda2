"""Outbound webhooks against a real HTTP receiver that verifies every delivery with the
standardwebhooks package; time is a parameter (a controllable clock), never a sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from customs_receiver import Receiver
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contracts import envelope, events
from customs import outbound
from customs.__main__ import SPEC
from customs.consumers import timers
from customs.delivery import Deliverer
from customs.schemas import WebhookType
from customs.settings import Settings
from customs.subscriptions import enqueue
from servicekit import db
from servicekit.consumer import ticker
from servicekit.db import make_engine

import factories
from helpers import ADMIN, service_client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def subscribe(client: TestClient, receiver: Receiver, **extra: Any) -> str:
    r = client.post(
        "/v1/subscriptions",
        headers=ADMIN,
        json={
            "url": receiver.url,
            "event_types": ["declaration.accepted", "declaration.rejected"],
            **extra,
        },
    )
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    return str(r.json()["id"])


def declared(uscc: str, outcome: str = "accepted") -> envelope.CloudEvent:
    return envelope.new_event(
        events.VehicleDeclared(
            enterprise_uscc=uscc,
            declaration_no="D2026350000123",
            vin=factories.vin(),
            broker_id="b",
            outcome=outcome,
            reasons=[] if outcome == "accepted" else ["licence_missing"],
            port_of_loading="CNXMN",
            destination_country="KZ",
            declared_at=datetime.now(UTC),
        ),
        source="ucx/customs",
    )


def consume(settings: Settings, event: envelope.CloudEvent) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as session, session.begin():
        enqueue(session, event.typed_data(), event)
    engine.dispose()


def deliver_at(settings: Settings, when: datetime) -> int:
    async def once() -> int:
        deliverer = Deliverer(make_engine(settings.database_url), settings)
        try:
            return await deliverer.run_once(now=when)
        finally:
            await deliverer.close()

    return asyncio.run(once())


def test_every_delivery_verifies_with_the_standardwebhooks_package(
    customs: tuple[TestClient, Settings], receiver: Receiver
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    subscribe(client, receiver, enterprises=[uscc])
    for _ in range(3):
        consume(settings, declared(uscc))
    consume(settings, declared(factories.uscc()))  # another enterprise: filtered out
    event = declared(uscc)
    consume(settings, event)
    consume(settings, event)  # the same event again: still one delivery
    assert deliver_at(settings, datetime.now(UTC)) == 4
    assert len(receiver.verified) == 4 == len(set(receiver.verified))


def test_a_failing_receiver_gets_the_message_once_it_recovers_on_schedule(
    customs: tuple[TestClient, Settings], receiver: Receiver
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    subscription = subscribe(client, receiver)
    consume(settings, declared(uscc))
    receiver.plan = [(500, {}), (503, {}), (429, {"retry-after": "3600"})]
    t0 = datetime.now(UTC)
    assert deliver_at(settings, t0) == 1  # immediately: 500
    assert deliver_at(settings, t0 + timedelta(seconds=4)) == 0  # not before ~5 s
    assert deliver_at(settings, t0 + timedelta(seconds=6)) == 1  # 5 s (+-10 %): 503
    assert deliver_at(settings, t0 + timedelta(seconds=6 + 331)) == 1  # 5 min (+-10 %): 429
    # next would be 30 min (+-10 %), but Retry-After asks for an hour: it wins
    assert deliver_at(settings, t0 + timedelta(seconds=6 + 331 + 2000)) == 0
    assert deliver_at(settings, t0 + timedelta(seconds=6 + 331 + 3601)) == 1  # recovered: 200
    assert len(receiver.verified) == 1 and len(set(receiver.received)) == 1
    log = client.get(f"/v1/subscriptions/{subscription}/deliveries", headers=ADMIN).json()
    assert [a["status_code"] for a in log[0]["attempts"]] == [500, 503, 429, 200]
    assert log[0]["status"] == "delivered"


def test_410_disables_the_endpoint_and_replay_sends_again(
    customs: tuple[TestClient, Settings], receiver: Receiver
) -> None:
    client, settings = customs
    subscription = subscribe(client, receiver)
    consume(settings, declared(factories.uscc()))
    receiver.plan = [(410, {})]
    assert deliver_at(settings, datetime.now(UTC)) == 1
    state = client.get(f"/v1/subscriptions/{subscription}", headers=ADMIN).json()
    assert (state["status"], state["disabled_reason"]) == (
        "disabled",
        "the endpoint answered 410 Gone",
    )
    consume(settings, declared(factories.uscc()))
    assert deliver_at(settings, datetime.now(UTC)) == 0  # disabled: nothing is sent
    client.patch(f"/v1/subscriptions/{subscription}", headers=ADMIN, json={"status": "active"})
    replayed = client.post(f"/v1/subscriptions/{subscription}/replay", headers=ADMIN, json={})
    assert replayed.json()["queued"] == 1
    assert deliver_at(settings, datetime.now(UTC)) == 2
    assert len(receiver.verified) == 2


def test_an_endpoint_failing_for_five_days_is_disabled(
    customs: tuple[TestClient, Settings], receiver: Receiver
) -> None:
    client, settings = customs
    subscription = subscribe(client, receiver)
    receiver.plan = [(500, {})] * 50
    consume(settings, declared(factories.uscc()))
    t0 = datetime.now(UTC)
    assert deliver_at(settings, t0) == 1
    consume(settings, declared(factories.uscc()))
    deliver_at(settings, t0 + timedelta(days=5, seconds=1))
    state = client.get(f"/v1/subscriptions/{subscription}", headers=ADMIN).json()
    log = client.get(f"/v1/subscriptions/{subscription}/deliveries", headers=ADMIN).json()
    assert state["status"] == "disabled", log
    assert "failed for 5 days" in state["disabled_reason"]


def test_queued_deliveries_survive_a_restart_and_go_out_once(
    customs: tuple[TestClient, Settings], receiver: Receiver
) -> None:
    client, settings = customs
    subscribe(client, receiver)
    for _ in range(20):
        consume(settings, declared(factories.uscc()))
    # "restart": a new sender on the same database picks up what the old one left queued
    assert deliver_at(settings, datetime.now(UTC)) == 20
    assert deliver_at(settings, datetime.now(UTC)) == 0
    assert len(receiver.verified) == 20 == len(set(receiver.verified))


def test_secret_rotation_signs_with_both_secrets_during_the_overlap(
    customs: tuple[TestClient, Settings], receiver: Receiver
) -> None:
    client, settings = customs
    subscription = subscribe(client, receiver)
    old = receiver.secret
    rotated = client.post(f"/v1/subscriptions/{subscription}/secret", headers=ADMIN).json()
    consume(settings, declared(factories.uscc()))
    deliver_at(settings, datetime.now(UTC))  # verified with the old secret
    receiver.secret = rotated["secret"]
    consume(settings, declared(factories.uscc()))
    deliver_at(settings, datetime.now(UTC))  # and with the new one
    assert len(receiver.verified) == 2 and old != receiver.secret


def test_subscription_urls_are_checked_against_ssrf() -> None:
    assert outbound.check_url("http://127.0.0.1:9000/hook", production=False)
    for url, production in [
        ("http://example.com/hook", False),  # plain http off loopback in development
        ("http://127.0.0.1/hook", True),  # https only in production
        ("https://127.0.0.1/hook", True),  # loopback
        ("https://10.0.0.5/hook", True),  # private
        ("https://169.254.169.254/latest/meta-data", True),  # link-local (cloud metadata)
        ("https://[::1]/hook", True),
        ("ftp://127.0.0.1/hook", False),
        ("https://user:pw@127.0.0.1/hook", False),
    ]:
        with pytest.raises(outbound.UrlRefused):
            outbound.check_url(url, production=production)
    assert outbound.check_url("https://93.184.216.34/hook", production=True)


def test_the_webhook_types_are_the_outbound_events_and_what_partners_may_subscribe_to() -> None:
    def event(type_: str, **data: Any) -> envelope.CloudEvent:
        return envelope.CloudEvent(
            id="e1", source="ucx/test", type=type_, time=datetime.now(UTC), enterpriseid="u",
            data=data,
        )  # fmt: skip

    sent = {
        outbound.webhook_type(event(model.TYPE, outcome=outcome))
        for model in outbound.OUTBOUND
        for outcome in ("accepted", "rejected")
    }
    assert sent == set(outbound.WEBHOOK_TYPES) == set(get_args(WebhookType))
    assert outbound.webhook_type(event(events.VehicleDeclared.TYPE, outcome="pending")) is None
    assert outbound.webhook_type(event(events.VehicleRegistered.TYPE)) is None


def test_the_schedule_is_jittered_and_ends() -> None:
    import random

    rng = random.Random(1)
    now = datetime(2026, 11, 27, tzinfo=UTC)
    schedule = Settings().delivery_schedule_s
    attempts = [outbound.next_attempt_at(schedule, n, now, rng=rng) for n in range(len(schedule))]
    waits = [(at - now).total_seconds() for at in attempts if at is not None]
    for wait, nominal in zip(waits, schedule, strict=True):
        assert nominal * 0.9 <= wait <= nominal * 1.1
    assert outbound.next_attempt_at(schedule, len(schedule), now) is None


def test_a_chaotic_receiver_gets_every_message_under_one_webhook_id_each(
    database_url: str, receiver: Receiver
) -> None:
    """500s, 503s, 429 with Retry-After, answers slower than our timeout, slow bodies: every
    message ends delivered, each attempt of it under the same webhook-id (the receiver's
    dedupe key), so from the receiver's side each message is applied exactly once."""
    import random

    for client, settings in service_client(SPEC, database_url, delivery_timeout_s=0.5):
        assert isinstance(settings, Settings)
        subscription = subscribe(client, receiver)
        uscc = factories.uscc()
        for _ in range(12):
            consume(settings, declared(uscc))
        rng = random.Random(7)
        chaos: list[Any] = [
            (500, {}), (503, {}), (429, {"retry-after": "1"}), (200, {}, 1.0), (200, {}, 0.2),
        ]  # fmt: skip
        receiver.plan = [rng.choice(chaos) for _ in range(30)]
        now = datetime.now(UTC)
        for _ in range(40):
            deliver_at(settings, now)
            log = client.get(f"/v1/subscriptions/{subscription}/deliveries", headers=ADMIN).json()
            if all(d["status"] == "delivered" for d in log) and len(log) == 12:
                break
            now += timedelta(hours=11)  # past any step of the schedule
        assert len(log) == 12 and all(d["status"] == "delivered" for d in log)
        ids = {d["id"] for d in log}  # the webhook-id, stable across attempts
        assert len(ids) == 12
        assert set(receiver.received) == ids  # every attempt carried its message's id
        assert set(receiver.verified) == ids  # the receiver accepted every message
        late = [i for i in receiver.verified if receiver.verified.count(i) > 1]
        attempts = {d["id"]: [a["status_code"] for a in d["attempts"]] for d in log}
        seen = [code for codes in attempts.values() for code in codes]
        assert None in seen and 429 in seen and 500 in seen  # the chaos really happened
        for webhook_id in late:  # a second 200 only after we gave up waiting for the first
            assert None in attempts[webhook_id] or attempts[webhook_id].count(200) == 1


def test_the_workers_delivery_timer_sends_on_the_workers_engine_and_closes_its_client_at_stop(
    customs: tuple[TestClient, Settings], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, settings = customs
    uscc = factories.uscc()
    subscribe(client, receiver, enterprises=[uscc])
    consume(settings, declared(uscc))
    consume(settings, declared(uscc, "rejected"))
    worker_engine = make_engine(settings.database_url)  # what the worker hands its timers

    def no_second_engine(*_args: object, **_kwargs: object) -> Engine:
        raise AssertionError("a timer built an engine of its own")

    monkeypatch.setattr(db, "create_engine", no_second_engine)
    (delivery,) = [t for t in timers(settings) if t.name == "customs-webhook-delivery"]
    assert delivery.arun is not None and delivery.close is not None
    owner = delivery.arun.__self__  # type: ignore[attr-defined]

    async def worker_life() -> None:
        await ticker(worker_engine, delivery)()  # as the worker's faust timer ticks
        assert delivery.close is not None
        await delivery.close()  # the worker stopping

    try:
        asyncio.run(worker_life())
        assert len(receiver.verified) == 2
        assert owner.deliverer.sessions.kw["bind"] is worker_engine
        assert owner.deliverer.client.is_closed
    finally:
        worker_engine.dispose()
