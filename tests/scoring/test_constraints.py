"""Every unique and primary-key constraint of scoring's tables, listed from the models'
metadata: for each, the input that would violate it gets a final answer (a no-op for a
consumed event, the first answer for a repeated request, "done" for a letter redriven again),
or no input can name the constrained value. A constraint added to the models fails
``test_every_constraint_is_covered`` until it is entered below with its proof."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scoring_events import exported, inspected, registered

from contracts.envelope import CloudEvent
from scoring.__main__ import SPEC
from scoring.models import Base

import factories
from helpers import (
    ADMIN,
    SERVICEKIT_DRAWN,
    Constraint,
    assert_constraints_covered,
    consume,
    service_client,
    sql,
)

SERVER_DRAWN: dict[Constraint, str] = {
    ("ledger", ("seq",)): "autoincrement",
    ("assessment_changes", ("id",)): "autoincrement",
    ("assessment_changes", ("event_id",)): "the CloudEvents id (uuid7) scoring draws for each "
    "enterprise.assessed it emits",
    ("rescore_jobs", ("id",)): "a uuid4 the service draws; POST /v1/rescore refuses an `id`",
    ("rescore_chunks", ("job_id", "number")): "the service's job id and the chunk numbers it "
    "plans when the job starts; no input names either",
    **SERVICEKIT_DRAWN,
}
"""Constraints on values only the service chooses: no input reaches them."""

ANSWERED: dict[Constraint, str] = {
    ("inbox", ("event_id",)): "test_a_redelivered_event_changes_nothing",
    ("ledger", ("event_id",)): "test_a_redelivered_event_changes_nothing",
    ("assessments", ("uscc",)): "test_a_new_enterprise_is_assessed_once_in_a_batch_and_after",
    (
        "exported_vins",
        ("uscc", "vin"),
    ): "test_a_vin_exported_twice_is_recorded_once_and_exits_the_enterprise",
    (
        "dlq_redrives",
        ("topic", "partition", "offset"),
    ): "test_ops.test_a_letter_redriven_twice_also_concurrently_is_published_once",
    ("idempotency_keys", ("scope", "key")): "test_a_reused_idempotency_key_gets_a_final_answer",
}
"""Constraints that input can reach, and the test proving the answer is final (``module.name``
for a test elsewhere in tests/scoring)."""


def test_every_constraint_is_covered() -> None:
    assert_constraints_covered(Base.metadata, Path(__file__), SERVER_DRAWN, ANSWERED)


@pytest.fixture
def scoring(database_url: str) -> Iterator[TestClient]:
    for client, _ in service_client(SPEC, database_url):
        yield client


def deliver(client: TestClient, *batch: CloudEvent) -> None:
    consume(SPEC, client.app.state.settings, *batch)  # type: ignore[attr-defined]


def dead_letters(client: TestClient) -> int:
    return int(sql(client, "SELECT count(*) FROM outbox WHERE topic LIKE '%.dlq'")[0][0])


def problem(r: Any) -> tuple[int, str]:
    assert r.headers["content-type"] == "application/problem+json", r.text
    return r.status_code, str(r.json()["type"]).rsplit("/", 1)[1]


def export_of(uscc: str, vin: str) -> CloudEvent:
    """Another departure of ``vin`` (a new declaration and event id)."""
    made: CloudEvent = exported(uscc)
    return made.model_copy(update={"data": {**made.data, "vin": vin}})


def test_a_redelivered_event_changes_nothing(scoring: TestClient) -> None:
    uscc = factories.uscc()
    event = inspected(uscc)
    deliver(scoring, event, event)  # twice in one batch
    deliver(scoring, event)  # and again after a crash
    assert sql(scoring, "SELECT count(*) FROM inbox") == [(1,)]
    assert sql(scoring, "SELECT event_id FROM ledger") == [(event.id,)]
    assert sql(scoring, "SELECT events_counted FROM assessments") == [(1,)]
    assert dead_letters(scoring) == 0


def test_a_new_enterprise_is_assessed_once_in_a_batch_and_after(scoring: TestClient) -> None:
    uscc = factories.uscc()
    deliver(scoring, registered(uscc), inspected(uscc), exported(uscc))  # one batch, new uscc
    deliver(scoring, inspected(uscc))  # a later batch finds the row
    assert sql(scoring, "SELECT uscc, events_counted FROM assessments") == [(uscc, 4)]
    assert dead_letters(scoring) == 0


def test_a_vin_exported_twice_is_recorded_once_and_exits_the_enterprise(
    scoring: TestClient,
) -> None:
    uscc, vin = factories.uscc(), factories.vin()
    first = export_of(uscc, vin)
    deliver(scoring, first, export_of(uscc, vin))  # the same VIN twice in one batch
    deliver(scoring, export_of(uscc, vin))  # and in a later batch
    elsewhere = export_of(other := factories.uscc(), vin)  # another enterprise's own export
    deliver(scoring, elsewhere)
    recorded = sql(scoring, "SELECT uscc, vin, event_id FROM exported_vins")
    assert sorted(recorded) == sorted([(uscc, vin, first.id), (other, vin, elsewhere.id)])
    exports = "SELECT count(*) FROM ledger WHERE type = 'vehicle.exported'"
    assert sql(scoring, exports) == [(4,)]  # every departure is in the ledger
    tiers = dict(sql(scoring, "SELECT uscc, tier FROM assessments"))  # a repeat is the exit
    assert tiers[uscc] == "exit" and tiers[other] != "exit"  # rule same_vin_exported_twice
    assert dead_letters(scoring) == 0


def test_a_reused_idempotency_key_gets_a_final_answer(scoring: TestClient) -> None:
    uscc = factories.uscc()
    deliver(scoring, registered(uscc), inspected(uscc), exported(uscc))
    headers = {**ADMIN, "Idempotency-Key": "ops-rescore-2026-12-02-01"}
    first = scoring.post("/v1/rescore", json={"uscc": uscc}, headers=headers)
    again = scoring.post("/v1/rescore", json={"uscc": uscc}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202), first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = scoring.post("/v1/rescore", json={}, headers=headers)
    assert problem(other) == (422, "idempotency-key-reused")
    assert sql(scoring, "SELECT count(*) FROM rescore_jobs") == [(1,)]


def test_input_cannot_choose_a_rescore_jobs_id(scoring: TestClient) -> None:
    r = scoring.post(
        "/v1/rescore", json={"id": "0b8f5a52-5d7e-4c1b-9a57-2f1c3f0d9e11"}, headers=ADMIN
    )
    assert problem(r) == (422, "validation-error")
    assert [e["field"] for e in r.json()["errors"]] == ["id"]
