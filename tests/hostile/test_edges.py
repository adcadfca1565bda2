"""What partners' tools see at the edges: every OpenAPI document resolves, a 405 names what is
allowed, and dates are ISO 8601 text (lax coercion read the number 0 as 1970-01-01)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from customs.__main__ import SPEC as CUSTOMS
from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from scoring.__main__ import SPEC as SCORING
from servicekit.cli import ServiceSpec

import factories
from helpers import ADMIN, service_client

SPECS: dict[str, ServiceSpec] = {
    "registry": REGISTRY,
    "inspection": INSPECTION,
    "customs": CUSTOMS,
    "scoring": SCORING,
}


@pytest.fixture(params=list(SPECS))
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, TestClient]]:
    name = str(request.param)
    for client, _ in service_client(SPECS[name], f"sqlite:///{tmp_path / name}.db"):
        yield name, client


def test_every_reference_in_every_openapi_document_resolves(
    service: tuple[str, TestClient],
) -> None:
    _, client = service
    document: dict[str, Any] = client.get("/openapi.json").json()
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(document)))
    assert refs, "no references at all: the check below would prove nothing"
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]
    assert "FieldError" in document["components"]["schemas"]


def test_a_wrong_method_is_405_naming_the_allowed_ones(service: tuple[str, TestClient]) -> None:
    name, client = service
    path = {
        "registry": "/v1/enterprises",
        "inspection": "/v1/stations",
        "customs": "/v1/brokers",
        "scoring": "/v1/rescore",
    }[name]
    r = client.delete(path, headers=ADMIN)
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "POST" in r.headers["allow"]


@pytest.fixture
def inspection(tmp_path: Path) -> Iterator[TestClient]:
    for client, _ in service_client(INSPECTION, f"sqlite:///{tmp_path}/inspection.db"):
        yield client


@pytest.mark.parametrize("number", [0, 1_767_225_600, 20261202.0])
def test_a_date_sent_as_a_number_is_refused_not_read_as_1970(
    inspection: TestClient, number: float
) -> None:
    r = inspection.post(
        "/v1/stations",
        headers=ADMIN,
        json={**factories.station(), "accreditation_valid_until": number},
    )
    assert r.status_code == 422, r.text
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [
        ("accreditation_valid_until", "iso_8601")
    ]
    assert (
        inspection.post("/v1/stations", headers=ADMIN, json=factories.station()).status_code == 201
    )
