"""Scoring's POSTs under an Idempotency-Key remember their answer in the effect's own
transaction (``servicekit.http.answer_once``), as every other service's do: a job and the
answer that names it commit together or not at all, so a retry after a crash gets the first
answer or runs as the first request, never a second job. What-if answers are remembered too
(a retry replays the first result). The replay and the 422 for another body under the same
key are ``test_constraints.test_a_reused_idempotency_key_gets_a_final_answer``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from scoring_events import inspected, registered
from sqlalchemy import Connection

from scoring.__main__ import SPEC

import factories
from helpers import ADMIN, before_insert, consume, service_client, sql


@pytest.fixture
def scoring(database_url: str) -> Iterator[TestClient]:
    for client, _ in service_client(SPEC, database_url):
        yield client


class AnswerLost(Exception):
    """The database fails the moment the answer is written (a crash, a full disk)."""


def lose_the_answer(_conn: Connection) -> None:
    raise AnswerLost("the answer's INSERT never happens")


def assessed(client: TestClient) -> str:
    uscc = factories.uscc()
    consume(SPEC, client.app.state.settings, registered(uscc), inspected(uscc))  # type: ignore[attr-defined]
    return uscc


def test_a_rescore_job_and_the_answer_naming_it_commit_together(scoring: TestClient) -> None:
    uscc = assessed(scoring)
    headers = {**ADMIN, "Idempotency-Key": "rescore-after-the-policy-change"}
    engine = scoring.app.state.engine  # type: ignore[attr-defined]
    with before_insert(engine, "idempotency_keys", lose_the_answer):
        lost = scoring.post("/v1/rescore", json={"uscc": uscc}, headers=headers)
    assert lost.status_code == 500
    assert sql(scoring, "SELECT count(*) FROM rescore_jobs") == [(0,)]  # no answer, no job

    first = scoring.post("/v1/rescore", json={"uscc": uscc}, headers=headers)  # the retry
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    [(job_id, answer)] = sql(
        scoring, "SELECT j.id, k.body FROM rescore_jobs j, idempotency_keys k WHERE k.key = :k",
        k=headers["Idempotency-Key"],
    )  # fmt: skip
    assert first.json()["id"] == job_id and bytes(answer) == first.content

    again = scoring.post("/v1/rescore", json={"uscc": uscc}, headers=headers)
    assert (again.status_code, again.content) == (202, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert sql(scoring, "SELECT count(*) FROM rescore_jobs") == [(1,)]


def test_a_refused_rescore_is_a_final_answer_too(scoring: TestClient) -> None:
    headers = {**ADMIN, "Idempotency-Key": "rescore-of-a-stranger"}
    unknown = {"uscc": factories.uscc()}
    refused = scoring.post("/v1/rescore", json=unknown, headers=headers)
    assert refused.status_code == 404
    assessed(scoring)  # whatever happens meanwhile, the retry gets the first answer
    again = scoring.post("/v1/rescore", json=unknown, headers=headers)
    assert (again.status_code, again.content) == (404, refused.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert sql(scoring, "SELECT count(*) FROM rescore_jobs") == [(0,)]


def test_a_what_if_under_a_key_replays_its_first_result(scoring: TestClient) -> None:
    uscc = assessed(scoring)
    path = f"/v1/enterprises/{uscc}/what-if"
    body = {"events": [{"type": "vehicle.registered", "data": {"vin": factories.vin(),
            "make": "BYD", "model": "Qin Plus", "model_year": 2022,
            "first_registration_date": "2022-06-01", "mileage_km": 21000,
            "registered_at": "2026-11-30T08:00:00+08:00"}}]}  # fmt: skip
    key = {"Idempotency-Key": "what-if-one-more-car"}
    first = scoring.post(path, json=body, headers=key)
    assert first.status_code == 200, first.text
    consume(SPEC, scoring.app.state.settings, inspected(uscc, "fail"))  # type: ignore[attr-defined]
    now = scoring.post(path, json=body)  # without a key: today's state
    assert now.json()["current_score"] != first.json()["current_score"]
    again = scoring.post(path, json=body, headers=key)
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    other = scoring.post(path, json={"events": body["events"] * 2}, headers=key)
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
