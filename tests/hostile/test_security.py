"""Hostile callers against every service's real app over HTTP: every admin operation without
or with wrong credentials, bodies that are too big or too deep, look-alike characters in
identifiers, and injection strings that must stay plain data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from customs.__main__ import SPEC as CUSTOMS
from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from scoring.__main__ import SPEC as SCORING
from servicekit.cli import ServiceSpec
from servicekit.officials import operation_of

import factories
from helpers import ADMIN, service_client

SPECS: dict[str, ServiceSpec] = {
    "registry": REGISTRY, "inspection": INSPECTION, "customs": CUSTOMS, "scoring": SCORING,
}  # fmt: skip
PROBLEM = "application/problem+json"


@pytest.fixture(params=list(SPECS))
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    extra = {"signing_key_file": str(tmp_path / "key")} if request.param == "inspection" else {}
    yield from (
        client
        for client, _ in service_client(
            SPECS[request.param], f"sqlite:///{tmp_path / 'x.db'}", **extra
        )
    )


def needs_admin(dependant: Dependant) -> bool:
    """Admits officials only (a public read an official's token widens is not one)."""
    return any(
        (operation_of(d.call) is not None and not hasattr(d.call, "when_query")) or needs_admin(d)
        for d in dependant.dependencies
    )


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI keeps those as one entry)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def admin_routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in api_routes(client.app.routes):  # type: ignore[attr-defined]
        if needs_admin(route.dependant):
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            found += [(method, path) for method in sorted(route.methods)]
    return found


def test_every_admin_operation_refuses_missing_and_wrong_credentials(app: TestClient) -> None:
    routes = admin_routes(app)
    assert routes, "every service has admin operations"
    for method, path in routes:
        for headers in (
            {},
            {"Authorization": "Bearer not-the-admin-token"},
            {"Authorization": "Basic x"},
        ):
            answer = app.request(method, path, headers=headers, json={})
            assert answer.status_code == 401, (method, path, headers, answer.status_code)
            assert answer.headers["content-type"] == PROBLEM


def test_too_big_and_too_deep_bodies_are_problems_not_crashes(app: TestClient) -> None:
    posts = [
        route.path
        for route in api_routes(app.app.routes)  # type: ignore[attr-defined]
        if "POST" in route.methods
    ]
    assert posts
    for path in (re.sub(r"\{[^}]+\}", "x", p) for p in posts):
        deep = "[" * 50_000 + "]" * 50_000
        answer = app.post(path, content=deep, headers={**ADMIN, "content-type": "application/json"})
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
        big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        answer = app.post(path, content=big, headers={**ADMIN, "content-type": "application/json"})
        assert answer.status_code == 413, (path, answer.status_code)
        assert answer.headers["content-type"] == PROBLEM


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[TestClient]:
    yield from (client for client, _ in service_client(REGISTRY, f"sqlite:///{tmp_path / 'r.db'}"))


@pytest.mark.parametrize(
    "lookalike",
    [
        "\u0410",  # Cyrillic capital A
        "\u039f",  # Greek capital Omicron
        "\uff21",  # fullwidth A
        "\u0041\u0301",  # A + combining acute
    ],
)
def test_lookalike_characters_in_identifiers_are_refused(
    registry: TestClient, lookalike: str
) -> None:
    body = factories.enterprise()
    body["uscc"] = body["uscc"][:10] + lookalike + body["uscc"][11:]
    answer = registry.post("/v1/enterprises", json=body)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "uscc"
    vin = factories.vin()
    assert registry.get(f"/v1/vehicles/{vin[:5]}{lookalike}{vin[6:]}").status_code in (404, 422)


INJECTIONS = [
    "Robert'); DROP TABLE enterprises;--",
    '{"$gt": ""}',
    "1 OR 1=1",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\u202eevil",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_stored_and_returned_as_plain_data(
    registry: TestClient, text: str
) -> None:
    body: dict[str, Any] = {
        **factories.enterprise(),
        "name": text,
        "address": text,
        "contact": text,
    }
    answer = registry.post("/v1/enterprises", json=body)
    assert answer.status_code == 201, answer.text
    stored = registry.get(f"/v1/enterprises/{body['uscc']}").json()
    assert (stored["name"], stored["address"], stored["contact"]) == (text, text, text)
    assert registry.get("/v1/enterprises").status_code == 200  # the table is still there
