"""Every unique and primary-key constraint of registry's tables, listed from the models'
metadata: for each, the input that would violate it gets a final answer (a 4xx problem+json
over HTTP, a no-op for a consumed event), or no input can name the constrained value. A
constraint added to the models fails ``test_every_constraint_is_covered`` until it is entered
below with its proof."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import scoring_events
from fastapi.testclient import TestClient

from contracts import envelope
from registry.__main__ import SPEC
from registry.models import Base
from servicekit.clock import clock

import factories
from helpers import (
    ADMIN,
    SERVICEKIT_DRAWN,
    Constraint,
    assert_constraints_covered,
    bearer,
    consume,
    row_lands_first,
    sql,
)
from stack_support import admitted_enterprise

SERVER_DRAWN: dict[Constraint, str] = {
    ("enterprises", ("api_key_hash",)): "SHA-256 of an API key the service draws on approval",
    ("status_changes", ("id",)): "autoincrement",
    ("status_changes", ("event_id",)): "the CloudEvents id the service draws per change "
    "(null for history entries that are no change: NULLs never collide)",
    ("complaints", ("id",)): "a uuid4 the service draws; POST .../complaints refuses an `id`",
    ("principals", ("id",)): "p-<uuid7> the service draws; POST /v1/principals refuses an `id`",
    ("principal_tokens", ("id",)): "a uuid7 the service draws per token",
    ("principal_tokens", ("digest",)): "SHA-256 of a token the service draws (256 random bits)",
    **SERVICEKIT_DRAWN,
}
"""Constraints on values only the service chooses: no input reaches them."""

ANSWERED: dict[Constraint, str] = {
    ("enterprises", ("uscc",)): "test_an_application_for_a_uscc_taken_meanwhile_is_409",
    (
        "vehicles",
        ("vin",),
    ): "test_a_vin_registered_meanwhile_is_409_alone_and_a_rejected_row_in_a_batch",
    (
        "timeline",
        ("event_id",),
    ): "test_a_vehicle_event_delivered_again_or_reusing_an_id_changes_nothing",
    (
        "inbox",
        ("event_id",),
    ): "test_a_vehicle_event_delivered_again_or_reusing_an_id_changes_nothing",
    (
        "idempotency_keys",
        ("scope", "key"),
    ): "test_api.test_idempotency_key_replays_the_first_answer",
}
"""Constraints that input can reach, and the test proving the answer is final (``module.name``
for a test elsewhere in tests/registry)."""


def test_every_constraint_is_covered() -> None:
    assert_constraints_covered(Base.metadata, Path(__file__), SERVER_DRAWN, ANSWERED)


def problem(r: Any) -> tuple[int, str]:
    assert r.headers["content-type"] == "application/problem+json", r.text
    return r.status_code, str(r.json()["type"]).rsplit("/", 1)[1]


def test_an_application_for_a_uscc_taken_meanwhile_is_409(registry: TestClient) -> None:
    body = factories.enterprise()
    again = registry.post("/v1/enterprises", json=body)  # one after the other
    assert again.status_code == 201
    assert problem(registry.post("/v1/enterprises", json=body)) == (409, "enterprise-exists")
    racing = factories.enterprise()  # two first applications at once: the loser's INSERT fails
    competitor = (
        "INSERT INTO enterprises (uscc, name, kind, province, address, appraiser_count, contact,"
        " status, applied_at, updated_at) VALUES (:u, 'Xiamen Lianfa Motor Trade Co., Ltd.',"
        " 'dealer', '350000', '9 Hubin Road, Xiamen', 5, 'trade@lianfa.cn', 'applied', :t, :t)"
    )
    with row_lands_first(registry, "enterprises", competitor, u=racing["uscc"], t=clock.now()):
        r = registry.post("/v1/enterprises", json=racing)
    assert problem(r) == (409, "enterprise-exists")
    assert r.json()["uscc"] == racing["uscc"]
    assert sql(registry, "SELECT count(*) FROM enterprises WHERE uscc = :u", u=racing["uscc"]) == [
        (0,)
    ]  # the winner's row was this test's stand-in, rolled back with the loser


COMPETING_VEHICLE = (
    "INSERT INTO vehicles (vin, enterprise_uscc, make, model, model_year,"
    " first_registration_date, registration_certificate_no, engine_no, mileage_km, fuel_type,"
    " hs_code, destination_country, transfer_endorsed_on, stage, registered_at, event_id,"
    " warnings) VALUES (:vin, :uscc, 'Nissan', 'Sylphy 1.6L', 2021, '2021-05-10',"
    " '350200654321', 'HR16-553201', 51000, 'petrol', '8703232910', 'UZ', :endorsed,"
    " 'registered', :t, 'competing-event', '[]')"
)


def test_a_vin_registered_meanwhile_is_409_alone_and_a_rejected_row_in_a_batch(
    registry: TestClient,
) -> None:
    uscc, key = admitted_enterprise(registry)
    params = {"uscc": uscc, "endorsed": clock.today() - timedelta(days=5), "t": clock.now()}
    alone = factories.vehicle(uscc)
    assert registry.post("/v1/vehicles", json=alone, headers=bearer(key)).status_code == 201
    again = registry.post("/v1/vehicles", json=alone, headers=bearer(key))
    assert problem(again) == (409, "vehicle-already-registered")
    racing = factories.vehicle(uscc)
    with row_lands_first(
        registry, "vehicles", COMPETING_VEHICLE, racing["vin"], vin=racing["vin"], **params
    ):
        r = registry.post("/v1/vehicles", json=racing, headers=bearer(key))
    assert problem(r) == (409, "vehicle-already-registered")

    rows = [factories.vehicle(uscc) for _ in range(3)]
    taken = rows[1]["vin"]  # registered by another request after the batch read the VINs
    with row_lands_first(registry, "vehicles", COMPETING_VEHICLE, taken, vin=taken, **params):
        batch = registry.post("/v1/vehicles:batch", json={"vehicles": rows}, headers=bearer(key))
    assert batch.status_code == 207, batch.text
    results = batch.json()["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "created"]
    assert results[1]["errors"][0]["rule"] == "vehicle_already_registered"
    vins = {v for (v,) in sql(registry, "SELECT vin FROM vehicles")}
    assert vins == {alone["vin"], rows[0]["vin"], rows[2]["vin"]}
    registered = sql(registry, "SELECT count(*) FROM outbox WHERE topic = 'vehicle.registered.v1'")
    assert registered == [(3,)]  # the rejected row's event went with its savepoint


def inspected(uscc: str, vin: str, event_id: str | None = None) -> envelope.CloudEvent:
    """A passed inspection of ``vin`` (with ``event_id``, if given)."""
    made = scoring_events.inspected(uscc)
    update = {"data": {**made.data, "vin": vin}, "subject": vin, "id": event_id or made.id}
    return made.model_copy(update=update)


def test_a_vehicle_event_delivered_again_or_reusing_an_id_changes_nothing(
    registry: TestClient,
) -> None:
    uscc, key = admitted_enterprise(registry)
    vehicle = factories.vehicle(uscc)
    registry.post("/v1/vehicles", json=vehicle, headers=bearer(key))
    settings = registry.app.state.settings  # type: ignore[attr-defined]
    passed = inspected(uscc, vehicle["vin"])
    consume(SPEC, settings, passed, passed)  # twice in one batch
    consume(SPEC, settings, passed)  # and again after a crash
    [(registered_id,)] = sql(registry, "SELECT event_id FROM vehicles")
    consume(SPEC, settings, inspected(uscc, vehicle["vin"], event_id=registered_id))
    timeline = registry.get(f"/v1/vehicles/{vehicle['vin']}/timeline").json()
    assert [e["type"] for e in timeline["events"]] == ["vehicle.registered", "vehicle.inspected"]
    assert sql(registry, "SELECT count(*) FROM outbox WHERE topic LIKE '%.dlq'") == [(0,)]


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [("/v1/enterprises/{uscc}/complaints", "id", "0b8f5a52-5d7e-4c1b-9a57-2f1c3f0d9e11")],
)
def test_input_cannot_choose_a_server_drawn_value(
    registry: TestClient, path: str, field: str, value: str
) -> None:
    uscc, _key = admitted_enterprise(registry)
    body = {"country": "KZ", "category": "other", "description": "Late delivery of documents."}
    r = registry.post(path.format(uscc=uscc), json={**body, field: value}, headers=ADMIN)
    assert problem(r) == (422, "validation-error")
    assert [e["field"] for e in r.json()["errors"]] == [field]
