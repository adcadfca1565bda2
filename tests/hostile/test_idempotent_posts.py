"""Every POST of registry and inspection that creates or changes something takes an
Idempotency-Key: a retry gets the first answer (``idempotent-replayed: true``) and the
effect happens once, whether the route goes through the writer or opens its own transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY

import factories
from helpers import ADMIN, bearer, service_client, sql


@pytest.fixture
def registry(database_url: str) -> Iterator[TestClient]:
    for client, _settings in service_client(REGISTRY, database_url):
        yield client


@pytest.fixture
def inspection(database_url: str) -> Iterator[TestClient]:
    for client, _settings in service_client(INSPECTION, database_url):
        yield client


def twice(client: TestClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    headers = {**headers, "Idempotency-Key": f"retry-{path}"}
    first = client.post(path, json=body, headers=headers)
    again = client.post(path, json=body, headers=headers)
    assert first.status_code < 300, first.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    return first.json()


def test_registry_posts_replay(registry: TestClient) -> None:
    enterprise = factories.enterprise()
    uscc = enterprise["uscc"]
    twice(registry, "/v1/enterprises", enterprise, {})
    decided = twice(
        registry,
        f"/v1/enterprises/{uscc}/decisions",
        {"action": "approve", "reason": "site visit passed"},
        ADMIN,
    )
    key = bearer(decided["api_key"])  # the same key both times: one approval
    twice(registry, "/v1/vehicles", factories.vehicle(uscc), key)
    batch = twice(registry, "/v1/vehicles:batch", {"vehicles": [factories.vehicle(uscc)] * 1}, key)
    assert batch["created"] == 1
    complaint = {"country": "KZ", "category": "no_spare_parts", "description": "no parts"}
    filed = twice(registry, f"/v1/enterprises/{uscc}/complaints", complaint, ADMIN)
    twice(
        registry,
        f"/v1/enterprises/{uscc}/complaints/{filed['id']}/resolve",
        {"resolution": "parts shipped from Xiamen"},
        ADMIN,
    )
    counts: dict[str, Callable[[], Any]] = {
        "enterprise": lambda: sql(registry, "SELECT count(*) FROM enterprises"),
        "vehicles": lambda: sql(registry, "SELECT count(*) FROM vehicles"),
        "complaints": lambda: sql(registry, "SELECT count(*) FROM complaints"),
        "approvals": lambda: sql(
            registry, "SELECT count(*) FROM status_changes WHERE action = 'approve'"
        ),
    }
    assert {name: count() for name, count in counts.items()} == {
        "enterprise": [(1,)],
        "vehicles": [(2,)],
        "complaints": [(1,)],
        "approvals": [(1,)],
    }


def test_inspection_posts_replay(inspection: TestClient) -> None:
    station = twice(inspection, "/v1/stations", factories.station(), ADMIN)
    rotated = twice(inspection, f"/v1/stations/{station['id']}/keys", None, ADMIN)
    twice(
        inspection,
        f"/v1/stations/{station['id']}/status",
        {"status": "active", "reason": "calibration renewed"},
        ADMIN,
    )
    assert sql(inspection, "SELECT count(*) FROM stations") == [(1,)]
    assert sql(inspection, "SELECT count(*) FROM station_keys") == [(2,)]
    assert rotated["api_key"].startswith("ucx_stn_")
