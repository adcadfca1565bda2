"""Every service's OpenAPI document is what partners' code generators and Swagger read: it is
valid OpenAPI, it declares the credentials (admin token, enterprise key, station key) as
security schemes, and each operation names the one it needs, truthfully: an operation that
names none answers without credentials, one that names one refuses a caller who sends none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from customs.__main__ import SPEC as CUSTOMS
from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from scoring.__main__ import SPEC as SCORING
from servicekit.cli import ServiceSpec

from helpers import service_client

SPECS: dict[str, ServiceSpec] = {
    "registry": REGISTRY, "inspection": INSPECTION, "customs": CUSTOMS, "scoring": SCORING,
}  # fmt: skip
SCHEMES = {
    "registry": {"officialToken", "enterpriseKey"},
    "inspection": {"officialToken", "stationKey"},
    "customs": {"officialToken"},
    "scoring": {"officialToken"},
}
ADMIN_ONLY = [{"officialToken": []}]
NAMED: dict[str, dict[tuple[str, str], list[dict[str, list[str]]] | None]] = {
    # a few operations by name, so the generic checks below cannot pass on a wrong mapping
    "registry": {
        ("post", "/v1/enterprises"): None,  # applying is open to anyone
        ("get", "/v1/enterprises"): [{}, {"officialToken": []}],  # the token adds the review list
        ("post", "/v1/enterprises/{uscc}/decisions"): ADMIN_ONLY,
        ("post", "/v1/vehicles"): [{"enterpriseKey": []}],
        ("post", "/v1/vehicles:batch"): [{"enterpriseKey": []}],
        ("get", "/v1/vehicles/{vin}"): None,
    },
    "inspection": {
        ("post", "/v1/stations"): ADMIN_ONLY,
        ("post", "/v1/inspections"): [{"stationKey": []}],
        ("get", "/v1/certificates/public-key"): None,
    },
    "customs": {
        ("post", "/v1/brokers"): ADMIN_ONLY,
        ("post", "/v1/webhooks/brokers/{broker_id}"): None,  # signed, not a bearer
        ("get", "/v1/subscriptions"): ADMIN_ONLY,
    },
    "scoring": {
        ("post", "/v1/rescore"): ADMIN_ONLY,
        ("get", "/v1/rankings"): None,
    },
}
WEBHOOK = "/v1/webhooks/brokers/{broker_id}"
PROBLEM = "application/problem+json"


@pytest.fixture(params=list(SPECS))
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, TestClient]]:
    extra = {"signing_key_file": str(tmp_path / "key")} if request.param == "inspection" else {}
    url = f"sqlite:///{tmp_path / 'openapi.db'}"
    for client, _ in service_client(SPECS[request.param], url, **extra):
        yield request.param, client


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_the_document_is_valid_openapi(service: tuple[str, TestClient]) -> None:
    _, client = service
    document = client.get("/openapi.json").json()
    validate(document)  # raises on any schema error or unresolvable $ref
    assert document["openapi"].startswith("3.")


def test_the_credentials_are_bearer_schemes_swagger_can_send(
    service: tuple[str, TestClient],
) -> None:
    """Swagger's "Authorize" asks for each declared scheme and sends it as
    ``Authorization: Bearer <value>`` on the operations that name it."""
    name, client = service
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == SCHEMES[name]
    for scheme in schemes.values():
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        assert scheme["description"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    named = {(method, path): op.get("security") for method, path, op in operations(document)}
    for (method, path), security in NAMED[name].items():
        assert named[(method, path)] == security, f"{method.upper()} {path}"
    used = {s for ops in named.values() for req in ops or () for s in req}
    assert used == SCHEMES[name], "every declared scheme is named by an operation"


def test_each_operation_names_exactly_the_credentials_it_enforces(
    service: tuple[str, TestClient],
) -> None:
    """Called with no credentials (any path ids, no body): an operation that names a scheme
    answers 401 problem+json before anything else; one that names none does not ask for
    credentials. The broker webhook is the exception, and says so with its signature headers."""
    _, client = service
    document = client.get("/openapi.json").json()
    for method, path, operation in operations(document):
        url = re.sub(r"\{[^}]+\}", "LGBH52E04PY000001", path)
        answer = client.request(method, url)
        requirements = operation.get("security") or []
        label = f"{method.upper()} {path} -> {answer.status_code}"
        if requirements and {} not in requirements:
            assert answer.status_code == 401, label
            assert answer.headers["content-type"] == PROBLEM, label
        elif path != WEBHOOK:
            assert answer.status_code != 401, label


def test_the_admin_token_widens_the_public_enterprise_list(tmp_path: Path) -> None:
    """``GET /v1/enterprises`` is open (``security: [{}, officialToken]``); the review list it
    gives with ``recommended=reinstate`` needs the token."""
    for client, _ in service_client(REGISTRY, f"sqlite:///{tmp_path / 'registry.db'}"):
        assert client.get("/v1/enterprises").status_code == 200
        refused = client.get("/v1/enterprises", params={"recommended": "reinstate"})
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM


def test_the_broker_webhook_documents_its_signature_headers(tmp_path: Path) -> None:
    for client, _ in service_client(CUSTOMS, f"sqlite:///{tmp_path / 'customs.db'}"):
        operation = client.get("/openapi.json").json()["paths"][WEBHOOK]["post"]
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        assert all(h["required"] and h["description"] for h in headers.values())
        unsigned = client.post("/v1/webhooks/brokers/brk_0001", json={"type": "lodged"})
        assert unsigned.status_code == 401
        assert unsigned.headers["content-type"] == PROBLEM
