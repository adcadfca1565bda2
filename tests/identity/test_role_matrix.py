"""The role matrix, generated from the one table (``servicekit.roles.OPERATIONS``): every
admin route of every service, called by an official of each role (and, for an operation
scoped by province, on an enterprise of the official's own province and of another), gets
the answer the table gives. Allowed: the request passes the door (whatever its dummy body then
earns). Refused: 403 problem+json naming why (the other province by its code), nothing
written but the audit row of the denial.

A route that admits officials without a row in the table cannot be built (``Official``
raises); a row without a route, or an admin route without an operation, fails
``test_every_operation_has_a_route``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from identity_support import OTHER, OWN, as_official, ask_registry, officials
from sqlalchemy import create_engine, inspect, text

from customs.__main__ import SPEC as CUSTOMS
from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from scoring.__main__ import SPEC as SCORING
from servicekit.db import normalise_url
from servicekit.idempotency import flat_routes
from servicekit.officials import operation_of
from servicekit.roles import OPERATIONS, ROLES, Operation

import factories
from helpers import ADMIN, service_client

SPECS = {"registry": REGISTRY, "inspection": INSPECTION, "customs": CUSTOMS, "scoring": SCORING}


def _dependencies(route: Any) -> Iterator[object]:
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        yield dependant.call
        stack.extend(dependant.dependencies)


QUERY_VALUES = {"recommended": "reinstate"}
"""A sample value for each query parameter that makes a public read an official's
(``OfficialIf``)."""


def admin_routes(app: FastAPI) -> Iterator[tuple[str, str, Operation]]:
    """(method, path?query, operation) of every route that admits officials."""
    for route in flat_routes(app.routes):
        if getattr(route, "dependant", None) is None:
            continue
        for call in _dependencies(route):
            name = operation_of(call)
            if name is not None:
                query = getattr(call, "when_query", None)
                path = f"{route.path}?{query}={QUERY_VALUES[query]}" if query else route.path
                for method in sorted(route.methods):
                    yield method, path, OPERATIONS[name]


ROUTES = [
    (service, method, path, op)
    for service, spec in SPECS.items()
    for method, path, op in admin_routes(spec.create_app(spec.settings()))
]


def test_every_operation_has_a_route() -> None:
    assert {op.name for *_, op in ROUTES} == set(OPERATIONS)
    for service, _method, _path, op in ROUTES:
        assert op.service == service, f"{op.name} is routed by {service}"


def _cases() -> Iterator[Any]:
    for service, method, path, op in ROUTES:
        provinces = (OWN, OTHER) if op.scope else (None,)
        for role in ROLES:
            for province in provinces:
                where = f"/{province}" if province else ""
                yield pytest.param(
                    service, method, path, op, role, province,
                    id=f"{role}{where}:{method} {service}{path}",
                )  # fmt: skip


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestClient]]:
    directory = tmp_path_factory.mktemp("matrix")
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(_client(spec, f"sqlite:///{directory / name}.db"))
            for name, spec in SPECS.items()
        }
        for name, client in clients.items():
            if name != "registry":
                ask_registry(client, clients["registry"])
        yield clients


def _client(spec: Any, url: str) -> Any:
    from contextlib import contextmanager

    @contextmanager
    def running() -> Iterator[TestClient]:
        iterator = service_client(spec, url)
        client, _settings = next(iterator)
        try:
            yield client
        finally:
            iterator.close()

    return running()


@pytest.fixture(scope="module")
def tokens(apps: dict[str, TestClient]) -> dict[str, str]:
    return {role: found["token"] for role, found in officials(apps["registry"]).items()}


def _fill(path: str, province: str | None) -> str:
    uscc = factories.uscc(f"{(province or OWN)[:2]}0100")
    return re.sub(r"\{(\w+)\}", lambda m: uscc if m.group(1) == "uscc" else "none-0", path)


def _counts(client: TestClient) -> dict[str, int]:
    engine = create_engine(normalise_url(client.app.state.settings.database_url))  # type: ignore[attr-defined]
    try:
        with engine.connect() as connection:
            return {
                name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in inspect(connection).get_table_names()
            }
    finally:
        engine.dispose()


@pytest.mark.parametrize(("service", "method", "path", "op", "role", "province"), list(_cases()))
def test_the_role_matrix(
    apps: dict[str, TestClient],
    tokens: dict[str, str],
    service: str,
    method: str,
    path: str,
    op: Operation,
    role: str,
    province: str | None,
) -> None:
    client = apps[service]
    before = _counts(client)
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    answer = client.request(
        method, _fill(path, province), json=body, headers=as_official(tokens[role])
    )
    allowed = op.allows(role) and not (role == "province" and province == OTHER)  # type: ignore[arg-type]
    if allowed:
        assert answer.status_code not in (401, 403), answer.text
        return
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    if province == OTHER and op.allows(role):  # type: ignore[arg-type]
        assert problem["type"].endswith("/other-province")
        assert OTHER in problem["detail"]
    else:
        assert problem["type"].endswith("/role-not-allowed")
    after = _counts(client)
    assert after.pop("audit_log") == before.pop("audit_log") + 1  # the denial, and only it
    assert after == before


def test_the_break_glass_token_is_the_ministry(apps: dict[str, TestClient]) -> None:
    for client in apps.values():
        answer = client.get("/v1/audit", headers=ADMIN)
        assert answer.status_code == 200, answer.text


def test_an_unknown_token_is_401_everywhere(apps: dict[str, TestClient]) -> None:
    for service, method, path, _op in ROUTES:
        answer = apps[service].request(
            method, _fill(path, OWN), headers=as_official("ucxo_" + "x" * 43)
        )
        assert answer.status_code == 401, f"{method} {service}{path}: {answer.text}"
