""" "May this key register a vehicle for this enterprise?" has one answer: a single
registration and a batch row get the same problem for the same fault. A fault of the key or
of its enterprise refuses the whole batch with the single registration's problem; a fault of
the row (another enterprise's USCC, a VIN registered already) rejects that row with the
problem's type, detail and link, where the single registration answers the problem itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from servicekit.clock import clock

import factories
from helpers import ADMIN, bearer, sql

Setup = Callable[[TestClient], tuple[str, dict[str, Any]]]
"""Makes the fault: the key to send and the vehicle to register with it."""


def admitted(registry: TestClient, body: dict[str, Any] | None = None) -> tuple[str, str]:
    body = body or factories.enterprise()
    assert registry.post("/v1/enterprises", json=body).status_code == 201
    return body["uscc"], decide(registry, body["uscc"], "approve").json()["api_key"]


def decide(registry: TestClient, uscc: str, action: str) -> httpx.Response:
    r = registry.post(
        f"/v1/enterprises/{uscc}/decisions",
        headers=ADMIN,
        json={"action": action, "reason": f"{action} after the provincial audit"},
    )
    assert r.status_code == 200, r.text
    return r


def lapse(registry: TestClient, uscc: str) -> None:
    """The admission year passed without renewal; nothing has recorded the expiry yet."""
    yesterday = clock.today() - timedelta(days=1)
    sql(
        registry,
        "UPDATE enterprises SET admission_valid_until = :d WHERE uscc = :u",
        d=yesterday,
        u=uscc,
    )


def unknown_key(registry: TestClient) -> tuple[str, dict[str, Any]]:
    uscc, _key = admitted(registry)
    return "ucx_ent_" + "7f3a9c" * 7, factories.vehicle(uscc)


def another_enterprises_key(registry: TestClient) -> tuple[str, dict[str, Any]]:
    uscc, _key = admitted(registry)
    _other, other_key = admitted(registry)
    return other_key, factories.vehicle(uscc)


def in_status(*actions: str) -> Setup:
    def setup(registry: TestClient) -> tuple[str, dict[str, Any]]:
        uscc, key = admitted(registry)
        for action in actions:
            decide(registry, uscc, action)
        return key, factories.vehicle(uscc)

    return setup


def expired(registry: TestClient) -> tuple[str, dict[str, Any]]:
    uscc, key = admitted(registry)
    lapse(registry, uscc)
    assert registry.get(f"/v1/enterprises/{uscc}").json()["status"] == "expired"  # recorded
    return key, factories.vehicle(uscc)


def lapsed(registry: TestClient) -> tuple[str, dict[str, Any]]:
    uscc, key = admitted(registry)
    lapse(registry, uscc)
    (status,) = sql(registry, "SELECT status FROM enterprises WHERE uscc = :u", u=uscc)
    assert status == ("admitted",)  # the expiry is due, not recorded
    return key, factories.vehicle(uscc)


def reapplied_unapproved(registry: TestClient) -> tuple[str, dict[str, Any]]:
    """An exited enterprise reapplied a year later and is not approved again: its old key."""
    body = factories.enterprise()
    uscc, key = admitted(registry, body)
    decide(registry, uscc, "exit")
    with clock.frozen(clock.now() + timedelta(days=366)):
        assert registry.post("/v1/enterprises", json=body).status_code == 201
    return key, factories.vehicle(uscc)


def duplicate_vin(registry: TestClient) -> tuple[str, dict[str, Any]]:
    uscc, key = admitted(registry)
    vehicle = factories.vehicle(uscc)
    assert registry.post("/v1/vehicles", json=vehicle, headers=bearer(key)).status_code == 201
    return key, vehicle


FAULTS: dict[str, tuple[Setup, int, str]] = {
    "unknown key": (unknown_key, 401, "invalid-credentials"),
    "another enterprise's key": (another_enterprises_key, 403, "not-your-enterprise"),
    "suspended": (in_status("suspend"), 403, "enterprise-suspended"),
    "exited": (in_status("exit"), 403, "enterprise-exited"),
    "expired": (expired, 403, "enterprise-expired"),
    "admission lapsed, expiry not recorded yet": (lapsed, 403, "enterprise-expired"),
    "reapplied, not approved again": (reapplied_unapproved, 401, "invalid-credentials"),
    "duplicate VIN": (duplicate_vin, 409, "vehicle-already-registered"),
}
ROW_FAULTS = {"not-your-enterprise", "vehicle-already-registered"}
"""Faults of one row: the batch rejects that row; other faults refuse the whole batch."""


def problem_of_single(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"] == "application/problem+json", r.text
    body = dict(r.json())
    del body["title"], body["status"]
    return body


def problem_of_row(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 207, r.text
    (row,) = r.json()["results"]
    assert row["status"] == "rejected"
    (error,) = row["errors"]
    assert error["message"] == error["detail"]
    return {k: v for k, v in error.items() if k not in ("field", "rule", "message")}


def counts(registry: TestClient) -> list[Any]:
    return sql(
        registry,
        "SELECT (SELECT count(*) FROM vehicles), (SELECT count(*) FROM outbox"
        " WHERE topic = 'vehicle.registered.v1')",
    )


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_single_registration_and_a_batch_give_the_same_problem(
    registry: TestClient, fault: str
) -> None:
    setup, status, problem = FAULTS[fault]
    key, vehicle = setup(registry)
    before = counts(registry)

    single = registry.post("/v1/vehicles", json=vehicle, headers=bearer(key))
    batch = registry.post("/v1/vehicles:batch", json={"vehicles": [vehicle]}, headers=bearer(key))

    assert single.status_code == status, single.text
    answer = problem_of_single(single)
    assert answer["type"] == f"https://ucx.dev/problems/{problem}"
    if problem in ROW_FAULTS:
        assert problem_of_row(batch) == answer  # type, detail and link alike
    else:
        assert batch.status_code == status, batch.text
        assert problem_of_single(batch) == answer
    assert counts(registry) == before


def test_a_duplicate_vin_in_a_batch_carries_the_single_409s_link(registry: TestClient) -> None:
    key, vehicle = duplicate_vin(registry)
    batch = registry.post(
        "/v1/vehicles:batch", json={"vehicles": [vehicle, vehicle]}, headers=bearer(key)
    )
    for row in batch.json()["results"]:
        assert row["errors"][0]["vehicle"] == f"/v1/vehicles/{vehicle['vin']}"
        assert row["errors"][0]["rule"] == "vehicle_already_registered"
