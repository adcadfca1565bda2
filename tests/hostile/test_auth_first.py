"""Authentication comes before anything else: every protected POST of registry and inspection
answers a bad credential 401 problem+json whatever its body, and judges the body (422) only
for a caller it knows. A POST route added to either service fails
``test_every_post_route_is_listed`` until it is listed below as protected or public."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from servicekit.cli import ServiceSpec

import factories
from helpers import ADMIN, bearer, service_client
from stack_support import admitted_enterprise

PROTECTED: dict[str, dict[str, str]] = {
    "registry": {
        "/v1/enterprises/{uscc}/decisions": "admin",
        "/v1/enterprises/{uscc}/complaints": "admin",
        "/v1/enterprises/{uscc}/complaints/{complaint_id}/resolve": "admin",
        "/v1/principals": "admin",
        "/v1/principals/{principal_id}/rotate": "admin",
        "/v1/principals/{principal_id}/revoke": "admin",
        "/v1/vehicles": "enterprise",
        "/v1/vehicles:batch": "enterprise",
    },
    "inspection": {
        "/v1/stations": "admin",
        "/v1/stations/{station_id}/keys": "admin",
        "/v1/stations/{station_id}/status": "admin",
        "/v1/certificates/{certificate_no}/revoke": "admin",
        "/v1/inspections": "station",
    },
}
PUBLIC = {"registry": {"/v1/enterprises"}, "inspection": set()}
"""Applying for admission needs no credential. ``admin``: an official's token (the tests'
``UCX_ADMIN_TOKEN``, break-glass)."""

EMPTY_IS_VALID = {"/v1/principals/{principal_id}/rotate"}
"""Bodies whose every field is optional: ``{}`` is no invalid body there."""
SPECS = {"registry": REGISTRY, "inspection": INSPECTION}
BAD_CREDENTIALS = {
    "none": {},
    "unknown key": bearer("ucx_ent_kX3v9QmR2pL7sT4wY8zA1bC5dE6fG0hJ2kL4mN6pQ8r"),
    "not bearer": {"Authorization": "Basic dWN4OnVjeA=="},
}
INVALID_BODIES: dict[str, Any] = {
    "empty object": {},
    "wrong shape": {"vin": 17, "items": "none", "action": ["approve"], "unexpected": True},
    "not JSON": b'{"vin": "LSV54Z6F5NG0021',
}


def post(client: TestClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    if isinstance(body, bytes):
        headers = {**headers, "Content-Type": "application/json"}
        return client.post(path, content=body, headers=headers)
    return client.post(path, json=body, headers=headers)


def post_routes(client: TestClient) -> dict[str, bool]:
    """POST paths of the service's OpenAPI document, and whether each takes a body."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {
        path: "requestBody" in operations["post"]
        for path, operations in paths.items()
        if "post" in operations
    }


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "91350100M000100Y6A", path)


@pytest.fixture(params=["registry", "inspection"])
def service(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[str, TestClient]]:
    spec: ServiceSpec = SPECS[request.param]
    for client, _settings in service_client(spec, database_url):
        yield request.param, client


def test_every_post_route_is_listed(service: tuple[str, TestClient]) -> None:
    name, client = service
    assert set(post_routes(client)) == set(PROTECTED[name]) | PUBLIC[name]


@pytest.mark.parametrize("credential", sorted(BAD_CREDENTIALS))
@pytest.mark.parametrize("body", sorted(INVALID_BODIES))
def test_a_bad_credential_is_401_whatever_the_body(
    service: tuple[str, TestClient], credential: str, body: str
) -> None:
    name, client = service
    for path in PROTECTED[name]:
        r = post(client, concrete(path), INVALID_BODIES[body], BAD_CREDENTIALS[credential])
        assert r.status_code == 401, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 401


def credentials(name: str, client: TestClient) -> dict[str, dict[str, str]]:
    """A valid credential of each kind the service knows."""
    if name == "inspection":
        station = client.post("/v1/stations", json=factories.station(), headers=ADMIN).json()
        return {"admin": ADMIN, "station": bearer(station["api_key"])}
    _uscc, key = admitted_enterprise(client)
    return {"admin": ADMIN, "enterprise": bearer(key)}


def test_a_known_caller_gets_its_body_judged(service: tuple[str, TestClient]) -> None:
    name, client = service
    valid = credentials(name, client)
    takes_body = post_routes(client)
    for path, kind in PROTECTED[name].items():
        if not takes_body[path]:
            continue  # nothing to judge (a key rotation takes no body)
        for label, body in INVALID_BODIES.items():
            if label == "empty object" and path in EMPTY_IS_VALID:
                continue
            r = post(client, concrete(path), body, valid[kind])
            assert r.status_code == 422, (path, body, r.text)
            assert r.json()["type"].endswith("/validation-error")


def test_an_unknown_station_with_an_incomplete_checklist_is_401_not_422(
    database_url: str,
) -> None:
    """The issue's case: the checklist was judged before the caller."""
    for client, _settings in service_client(INSPECTION, database_url):
        vin = factories.vin()
        report: dict[str, Any] = {**factories.inspection(vin), "items": []}
        r = client.post("/v1/inspections", json=report, headers=BAD_CREDENTIALS["unknown key"])
        assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (401, "invalid-credentials")
        suspended = client.post("/v1/stations", json=factories.station(), headers=ADMIN).json()
        client.post(
            f"/v1/stations/{suspended['id']}/status",
            json={"status": "suspended", "reason": "calibration lapsed"},
            headers=ADMIN,
        )
        r = client.post("/v1/inspections", json=report, headers=bearer(suspended["api_key"]))
        assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (403, "station-suspended")


def test_a_suspended_enterprise_is_403_before_its_vehicle_is_judged(database_url: str) -> None:
    for client, _settings in service_client(REGISTRY, database_url):
        key = credentials("registry", client)["enterprise"]
        [admitted] = client.get("/v1/enterprises", params={"status": "admitted"}).json()["items"]
        suspended = client.post(
            f"/v1/enterprises/{admitted['uscc']}/decisions",
            json={"action": "suspend", "reason": "complaints under review"},
            headers=ADMIN,
        )
        assert suspended.status_code == 200, suspended.text
        invalid = {**factories.vehicle(admitted["uscc"]), "vin": "NOT-A-VIN", "model_year": 1800}
        for path, body in (("/v1/vehicles", invalid), ("/v1/vehicles:batch", {"vehicles": 7})):
            r = client.post(path, json=body, headers=key)
            assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (
                403,
                "enterprise-suspended",
            ), path
