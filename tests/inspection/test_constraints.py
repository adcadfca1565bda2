"""Every unique and primary-key constraint of inspection's tables, listed from the models'
metadata: for each, the input that would violate it gets a final answer (a 4xx problem+json
over HTTP, a no-op for a consumed event), or the input cannot name the constrained value at
all. A constraint added to the models fails ``test_every_constraint_is_covered`` until it is
entered below with its proof."""

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts import envelope, events
from inspection.__main__ import SPEC
from inspection.models import Base
from servicekit.clock import clock
from servicekit.idempotency import digest

import factories
from helpers import (
    ADMIN,
    SERVICEKIT_DRAWN,
    Constraint,
    assert_constraints_covered,
    bearer,
    service_client,
    sql,
)

SERVER_DRAWN: dict[Constraint, str] = {
    ("stations", ("id",)): "a uuid4 the service draws; POST /v1/stations refuses an `id` (422)",
    ("station_keys", ("id",)): "a uuid4 the service draws; key rotation takes no body",
    ("station_keys", ("key_hash",)): "SHA-256 of an API key the service draws (secrets)",
    ("inspections", ("id",)): "a uuid4 the service draws; POST /v1/inspections refuses an `id`",
    ("inspections", ("certificate_no",)): "80 random bits the service draws; a station "
    "cannot send a certificate number (422)",
    **SERVICEKIT_DRAWN,
}
"""Constraints on values only the service chooses: no input reaches them."""

ANSWERED: dict[Constraint, str] = {
    (
        "known_vehicles",
        ("vin",),
    ): "test_a_vin_registered_twice_keeps_its_first_copy_and_fails_nothing",
    ("inbox", ("event_id",)): "test_a_redelivered_event_changes_nothing",
    ("enterprise_standing", ("uscc",)): "test_status_changes_of_one_enterprise_in_one_batch_apply",
    ("idempotency_keys", ("scope", "key")): "test_a_reused_idempotency_key_gets_a_final_answer",
}
"""Constraints that input can reach, and the test proving the answer is final."""


def test_every_constraint_is_covered() -> None:
    assert_constraints_covered(Base.metadata, Path(__file__), SERVER_DRAWN, ANSWERED)


@pytest.fixture
def inspection(database_url: str, now: datetime) -> Iterator[TestClient]:
    for client, _ in service_client(SPEC, database_url):
        yield client


Deliver = Callable[..., None]


def registration(vin: str, uscc: str, make: str) -> envelope.CloudEvent:
    data = factories.vehicle_registered(uscc, vin=vin, make=make)
    return envelope.new_event(data, source="ucx/registry")


def status_change(uscc: str, to: str, at: datetime) -> envelope.CloudEvent:
    data = {"enterprise_uscc": uscc, "from": None, "to": to, "actor": "policy", "reason": "score"}
    return envelope.new_event(
        events.EnterpriseStatusChanged.model_validate({**data, "changed_at": at}),
        source="ucx/registry",
    )


def dead_letters(client: TestClient) -> int:
    return int(sql(client, "SELECT count(*) FROM outbox WHERE topic LIKE '%.dlq'")[0][0])


def problem(r: Any) -> tuple[int, str]:
    assert r.headers["content-type"] == "application/problem+json", r.text
    return r.status_code, str(r.json()["type"]).rsplit("/", 1)[1]


def test_a_vin_registered_twice_keeps_its_first_copy_and_fails_nothing(
    inspection: TestClient, deliver: Deliver
) -> None:
    uscc, vin = factories.uscc(), factories.vin()
    first, second = registration(vin, uscc, "Volkswagen"), registration(vin, uscc, "Nissan")
    deliver(first, second)  # one batch: the second sees the first's pending row
    deliver(registration(vin, uscc, "Nissan"))  # and a later batch
    assert sql(inspection, "SELECT make FROM known_vehicles") == [("Volkswagen",)]
    assert dead_letters(inspection) == 0


def test_a_redelivered_event_changes_nothing(inspection: TestClient, deliver: Deliver) -> None:
    uscc, vin = factories.uscc(), factories.vin()
    event = registration(vin, uscc, "Volkswagen")
    deliver(event, event)  # twice in one batch
    deliver(event)  # and again after a crash
    assert sql(inspection, "SELECT count(*) FROM inbox") == [(1,)]
    assert dead_letters(inspection) == 0


def test_status_changes_of_one_enterprise_in_one_batch_apply(
    inspection: TestClient, deliver: Deliver
) -> None:
    uscc, now = factories.uscc(), clock.now()
    deliver(
        status_change(uscc, "admitted", now - timedelta(days=300)),
        status_change(uscc, "warned", now - timedelta(days=2)),
        status_change(uscc, "suspended", now - timedelta(hours=1)),
    )
    assert sql(inspection, "SELECT status FROM enterprise_standing") == [("suspended",)]
    assert dead_letters(inspection) == 0


def test_a_reused_idempotency_key_gets_a_final_answer(
    inspection: TestClient, deliver: Deliver
) -> None:
    deliver(registration(vin := factories.vin(), factories.uscc(), "Volkswagen"))
    r = inspection.post("/v1/stations", json=factories.station(), headers=ADMIN)
    key = r.json()["api_key"]
    body = factories.inspection(vin)
    headers = {**bearer(key), "Idempotency-Key": "FZ-MVIC-2026-12-02-0042"}
    first = inspection.post("/v1/inspections", json=body, headers=headers)
    again = inspection.post("/v1/inspections", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = inspection.post(
        "/v1/inspections", json={**body, "odometer_km": 39_010}, headers=headers
    )
    assert problem(other) == (422, "idempotency-key-reused")
    # a claim without an answer, left by a process that died before answers were remembered
    # with their effect: it blocks nothing, the retry runs as the first request
    raw = json.dumps(factories.inspection(vin, odometer_km=39_020)).encode()
    scope = f"/v1/inspections|{digest(bearer(key)['Authorization'].encode())[:16]}"
    sql(
        inspection,
        "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) "
        "VALUES (:s, 'FZ-MVIC-2026-12-02-0043', :h, :t)",
        s=scope,
        h=digest(raw),
        t=clock.now(),
    )
    retried = inspection.post(
        "/v1/inspections",
        content=raw,
        headers={
            **headers,
            "Idempotency-Key": "FZ-MVIC-2026-12-02-0043",
            "Content-Type": "application/json",
        },
    )
    assert retried.status_code == 201, retried.text
    assert sql(inspection, "SELECT count(*) FROM inspections") == [(2,)]


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/stations", "id", "0b8f5a52-5d7e-4c1b-9a57-2f1c3f0d9e11"),
        ("/v1/inspections", "id", "0b8f5a52-5d7e-4c1b-9a57-2f1c3f0d9e11"),
        ("/v1/inspections", "certificate_no", "EXC-2612-N8ZFSMTAVJVRZ514-I"),
    ],
)
def test_input_cannot_choose_a_server_drawn_value(
    inspection: TestClient, path: str, field: str, value: str
) -> None:
    station = inspection.post("/v1/stations", json=factories.station(), headers=ADMIN).json()
    body = factories.station() if path == "/v1/stations" else factories.inspection(factories.vin())
    headers = ADMIN if path == "/v1/stations" else bearer(station["api_key"])
    r = inspection.post(path, json={**body, field: value}, headers=headers)
    assert problem(r) == (422, "validation-error")
    assert [e["field"] for e in r.json()["errors"]] == [field]
