"""Every admin POST of customs takes an Idempotency-Key, and its answer is remembered in the
effect's own transaction (``servicekit.http.answer_once``): a retry gets the first answer and
the effect happens once; the same key with another body is 422; an answer that cannot be
stored takes its effect with it; a refusal is an answer like any other."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from customs.settings import Settings
from servicekit import idempotency
from servicekit.idempotency import digest, key_scope

import factories
from helpers import ADMIN, sql


@dataclass(frozen=True)
class Post:
    path: str
    body: Any
    effect: str
    """SQL counting what the POST writes."""


def broker_body() -> dict[str, Any]:
    return {
        "name": "Xiamen Haitong Customs Brokerage",
        "customs_code": f"35{uuid.uuid4().int % 10**8:08d}",
        "enterprises": [factories.uscc()],
    }


SUBSCRIPTION = {"url": "http://127.0.0.1:9/hooks/ucx", "event_types": ["declaration.accepted"]}
QUEUED = "SELECT count(*) FROM deliveries WHERE status = 'pending'"


@pytest.fixture
def posts(customs: tuple[TestClient, Settings]) -> list[Post]:
    """Every admin POST, on a broker, a subscription and a failed delivery made without a key."""
    client, _settings = customs
    broker = client.post("/v1/brokers", headers=ADMIN, json=broker_body()).json()["id"]
    subscription = client.post("/v1/subscriptions", headers=ADMIN, json=SUBSCRIPTION).json()["id"]
    at = f"/v1/subscriptions/{subscription}"
    delivery = client.post(f"{at}/test", headers=ADMIN).json()["webhook_id"]
    sql(client, "UPDATE deliveries SET status = 'failed'")
    return [
        Post("/v1/brokers", broker_body(), "SELECT count(*) FROM brokers"),
        Post(f"/v1/brokers/{broker}/secrets", None, "SELECT count(*) FROM broker_secrets"),
        Post("/v1/subscriptions", SUBSCRIPTION, "SELECT count(*) FROM subscriptions"),
        Post(f"{at}/secret", None, "SELECT count(*) FROM subscription_secrets"),
        Post(f"{at}/test", None, "SELECT count(*) FROM deliveries"),
        Post(f"{at}/deliveries/{delivery}/replay", None, QUEUED),
        Post(f"{at}/replay", {"since": None}, QUEUED),
    ]


def keyed(key: str) -> dict[str, str]:
    return {**ADMIN, "Idempotency-Key": key}


def test_a_retry_of_every_admin_post_gets_the_first_answer_and_one_effect(
    customs: tuple[TestClient, Settings], posts: list[Post]
) -> None:
    client, _settings = customs
    for n, post in enumerate(posts):
        before = sql(client, post.effect)[0][0]
        first = client.post(post.path, json=post.body, headers=keyed(f"retry-{n}"))
        assert first.status_code < 300, (post.path, first.text)
        after = sql(client, post.effect)[0][0]
        assert after != before or post.effect == QUEUED, post.path
        again = client.post(post.path, json=post.body, headers=keyed(f"retry-{n}"))
        assert (again.status_code, again.content) == (first.status_code, first.content)
        assert again.headers["idempotent-replayed"] == "true", post.path
        assert "idempotent-replayed" not in first.headers
        assert sql(client, post.effect)[0][0] == after, post.path


def test_the_same_key_with_another_body_is_422(
    customs: tuple[TestClient, Settings], posts: list[Post]
) -> None:
    client, _settings = customs
    for post, other in [
        (posts[0], broker_body()),
        (posts[2], {**SUBSCRIPTION, "event_types": ["vehicle.exported"]}),
        (posts[6], {"since": "2026-12-01T00:00:00Z"}),
    ]:
        first = client.post(post.path, json=post.body, headers=keyed("one-key"))
        assert first.status_code < 300, first.text
        count = sql(client, post.effect)
        reused = client.post(post.path, json=other, headers=keyed("one-key"))
        assert reused.status_code == 422, post.path
        assert reused.json()["type"].endswith("/idempotency-key-reused")
        assert sql(client, post.effect) == count


def test_an_answer_that_cannot_be_stored_takes_its_effect_with_it(
    customs: tuple[TestClient, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies between the effect and its answer: one transaction, so neither is
    written, and the retry runs as the first request."""
    client, _settings = customs
    body = broker_body()

    def die(*_args: Any) -> None:
        raise RuntimeError("killed after the effect, before its answer was stored")

    monkeypatch.setattr(idempotency, "remember_in", die)
    assert client.post("/v1/brokers", json=body, headers=keyed("crash-1")).status_code == 500
    assert sql(client, "SELECT count(*) FROM brokers") == [(0,)]
    assert sql(client, "SELECT count(*) FROM broker_secrets") == [(0,)]
    monkeypatch.undo()
    retry = client.post("/v1/brokers", json=body, headers=keyed("crash-1"))
    assert retry.status_code == 201 and "idempotent-replayed" not in retry.headers
    again = client.post("/v1/brokers", json=body, headers=keyed("crash-1"))
    assert again.content == retry.content and again.headers["idempotent-replayed"] == "true"
    assert sql(client, "SELECT count(*) FROM brokers") == [(1,)]


def test_a_claim_left_by_a_dead_process_never_blocks_a_retry(
    customs: tuple[TestClient, Settings],
) -> None:
    client, _settings = customs
    raw = json.dumps(broker_body()).encode()
    sql(
        client,
        "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) "
        "VALUES (:scope, :key, :hash, :at)",
        scope=key_scope("/v1/brokers", ADMIN["Authorization"]),
        key="claimed-1",
        hash=digest(raw),
        at=datetime.now(UTC),
    )
    headers = {**keyed("claimed-1"), "Content-Type": "application/json"}
    r = client.post("/v1/brokers", content=raw, headers=headers)
    assert r.status_code == 201, r.text
    assert sql(client, "SELECT count(*) FROM brokers") == [(1,)]


def test_a_refusal_is_remembered_like_any_answer(customs: tuple[TestClient, Settings]) -> None:
    """A 404 and a 409 raised by a unique constraint at commit: final answers, replayed."""
    client, _settings = customs
    body = broker_body()
    assert client.post("/v1/brokers", json=body, headers=ADMIN).status_code == 201
    for path, sent in [("/v1/brokers", body), ("/v1/brokers/no-such-broker/secrets", None)]:
        first = client.post(path, json=sent, headers=keyed("refused"))
        assert first.status_code in (404, 409), first.text
        assert first.headers["content-type"] == "application/problem+json"
        again = client.post(path, json=sent, headers=keyed("refused"))
        assert (again.status_code, again.content) == (first.status_code, first.content)
        assert again.headers["idempotent-replayed"] == "true"
    assert sql(client, "SELECT count(*) FROM brokers") == [(1,)]
