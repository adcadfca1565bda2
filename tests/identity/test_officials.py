"""Named officials: a province official decides for their own province only, the history and
the audit trail name them, an auditor reads and cannot write, and a token's life (shown once,
hashed at rest, rotated with overlap, revoked at once, expired)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from identity_support import OTHER, OWN, as_official, ask_registry, create_official, officials

from inspection.__main__ import SPEC as INSPECTION
from registry.__main__ import SPEC as REGISTRY
from servicekit.clock import clock

import factories
from helpers import ADMIN, service_client, sql


@pytest.fixture
def registry(database_url: str) -> Iterator[TestClient]:
    for client, _settings in service_client(REGISTRY, database_url):
        yield client


@pytest.fixture
def inspection(tmp_path: Any, registry: TestClient) -> Iterator[TestClient]:
    for client, _settings in service_client(INSPECTION, f"sqlite:///{tmp_path / 'i.db'}"):
        ask_registry(client, registry)
        yield client


def apply(registry: TestClient, province: str = OWN) -> str:
    body = factories.enterprise(factories.uscc(f"{province[:2]}0100"), province=province)
    assert registry.post("/v1/enterprises", json=body).status_code == 201
    return str(body["uscc"])


def decide(registry: TestClient, uscc: str, token: str, action: str = "approve") -> Any:
    return registry.post(
        f"/v1/enterprises/{uscc}/decisions",
        json={"action": action, "reason": f"{action}: documents checked on site"},
        headers=as_official(token),
    )


def test_a_province_official_decides_for_their_province_only(registry: TestClient) -> None:
    people = officials(registry)
    lin = people["province"]
    own, other = apply(registry, OWN), apply(registry, OTHER)

    assert decide(registry, own, lin["token"]).status_code == 200
    refused = decide(registry, other, lin["token"])
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert OTHER in refused.json()["detail"]
    assert registry.get(f"/v1/enterprises/{other}").json()["status"] == "applied"

    history = registry.get(f"/v1/enterprises/{own}/history").json()
    approval = history[-1]
    assert (approval["actor"], approval["official_id"], approval["official_name"]) == (
        "official",
        lin["id"],
        "Lin Hui (Fujian DOC)",
    )

    auditor = as_official(people["auditor"]["token"])
    trail = registry.get("/v1/audit", params={"actor": lin["id"]}, headers=auditor).json()
    outcomes = [(e["operation"], e["outcome"], e["target"]) for e in trail["items"]]
    assert outcomes == [
        ("registry.enterprise.decide", "denied", f"/v1/enterprises/{other}/decisions"),
        ("registry.enterprise.decide", "ok", f"/v1/enterprises/{own}/decisions"),
    ]
    assert all(e["actor_name"] == "Lin Hui (Fujian DOC)" for e in trail["items"])
    assert registry.get(f"/v1/enterprises/{own}/history", headers=auditor).status_code == 200
    assert decide(registry, own, people["auditor"]["token"], "warn").status_code == 403
    assert registry.get(f"/v1/enterprises/{own}").json()["status"] == "admitted"


def test_an_audit_row_exists_only_with_its_change(registry: TestClient) -> None:
    """A refused decision (the status machine says no) writes neither the change nor a row."""
    minister = officials(registry)["ministry"]
    uscc = apply(registry)
    assert decide(registry, uscc, minister["token"], "reinstate").status_code == 409
    rows = sql(registry, "SELECT operation, outcome FROM audit_log WHERE actor_id = :a",
               a=minister["id"])  # fmt: skip
    assert rows == []
    assert decide(registry, uscc, minister["token"]).status_code == 200
    rows = sql(registry, "SELECT operation, outcome FROM audit_log WHERE actor_id = :a",
               a=minister["id"])  # fmt: skip
    assert rows == [("registry.enterprise.decide", "ok")]


def test_a_token_is_shown_once_and_kept_only_as_its_digest(registry: TestClient) -> None:
    created = create_official(registry, "operator", "Zhao Lei")
    token = created["token"]
    shown = registry.get(f"/v1/principals/{created['id']}", headers=ADMIN)
    assert shown.status_code == 200
    assert token not in shown.text and "token" not in shown.json()
    listed = registry.get("/v1/principals", headers=ADMIN)
    assert token not in listed.text
    dump = json.dumps([list(map(str, r)) for r in sql(registry, "SELECT * FROM principal_tokens")])
    assert token not in dump
    assert sql(registry, "SELECT count(*) FROM principal_tokens WHERE digest = :d",
               d=__import__("hashlib").sha256(token.encode()).hexdigest()) == [(1,)]  # fmt: skip


def test_rotation_keeps_the_old_token_for_the_overlap_only(registry: TestClient) -> None:
    created = create_official(registry, "auditor", "Chen Jing")
    old = created["token"]
    rotated = registry.post(
        f"/v1/principals/{created['id']}/rotate", json={"overlap_hours": 1}, headers=ADMIN
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["token"]
    assert new != old
    for token in (old, new):
        assert registry.get("/v1/audit", headers=as_official(token)).status_code == 200
    try:
        clock.advance(timedelta(hours=1, seconds=1))
        assert registry.get("/v1/audit", headers=as_official(old)).status_code == 401
        assert registry.get("/v1/audit", headers=as_official(new)).status_code == 200
    finally:
        clock.reset()


def test_a_token_expires(registry: TestClient) -> None:
    token = create_official(registry, "auditor")["token"]
    try:
        clock.advance(timedelta(days=90, seconds=1))  # REGISTRY_PRINCIPAL_TOKEN_DAYS
        assert registry.get("/v1/audit", headers=as_official(token)).status_code == 401
    finally:
        clock.reset()


def test_a_revocation_holds_at_once_in_every_service(
    registry: TestClient, inspection: TestClient
) -> None:
    created = create_official(registry, "auditor")
    reader = as_official(created["token"])
    assert inspection.get("/v1/audit", headers=reader).status_code == 200
    revoked = registry.post(f"/v1/principals/{created['id']}/revoke", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert registry.get("/v1/audit", headers=reader).status_code == 401
    assert inspection.get("/v1/audit", headers=reader).status_code == 401
    again = registry.post(f"/v1/principals/{created['id']}/rotate", json={}, headers=ADMIN)
    assert again.status_code == 409


def test_only_the_ministry_manages_principals(registry: TestClient) -> None:
    people = officials(registry)
    body = {"name": "New official", "role": "operator"}
    for role in ("province", "operator", "auditor"):
        answer = registry.post(
            "/v1/principals", json=body, headers=as_official(people[role]["token"])
        )
        assert answer.status_code == 403, role
    minister = as_official(people["ministry"]["token"])
    assert registry.post("/v1/principals", json=body, headers=minister).status_code == 201
    for bad in (
        {"name": "x", "role": "province"},
        {"name": "x", "role": "operator", "province": OWN},
    ):
        answer = registry.post("/v1/principals", json=bad, headers=minister)
        assert answer.status_code == 422, bad


def test_the_cli_creates_the_first_principal(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for registry, _settings in service_client(REGISTRY, url):
        done = subprocess.run(
            [sys.executable, "-m", "registry", "principals", "create",
             "--role", "ministry", "--name", "Wang Fang"],
            env={**__import__("os").environ, "REGISTRY_DATABASE_URL": url},
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        printed = json.loads(done.stdout)
        assert (printed["role"], printed["name"]) == ("ministry", "Wang Fang")
        minister = as_official(printed["token"])
        assert registry.get(f"/v1/principals/{printed['id']}", headers=minister).status_code == 200
        trail = registry.get("/v1/audit", params={"actor": "cli"}, headers=minister).json()
        assert [e["operation"] for e in trail["items"]] == ["registry.principal.create"]


def test_writes_by_either_session_path_record_their_official(inspection: TestClient) -> None:
    """A station made through ``answer_once`` and a key revoked through the request's session
    (``get_session``) each leave one audit row naming the official, with their change."""
    station = inspection.post("/v1/stations", json=factories.station(), headers=ADMIN).json()
    keys = inspection.get(f"/v1/stations/{station['id']}/keys", headers=ADMIN).json()
    path = f"/v1/stations/{station['id']}/keys/{keys[0]['id']}"
    assert inspection.delete(path, headers=ADMIN).status_code == 200
    rows = sql(inspection, "SELECT operation, outcome, actor_id, target FROM audit_log")
    assert rows == [
        ("inspection.station.create", "ok", "break-glass", "/v1/stations"),
        ("inspection.station.key-revoke", "ok", "break-glass", path),
    ]
