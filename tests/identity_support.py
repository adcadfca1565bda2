"""Officials for the tests: principals created over the registry's API (with the break-glass
token), and the other services wired to ask that registry who holds a token."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from servicekit.officials import RemoteDirectory

from helpers import ADMIN, bearer

OWN, OTHER = "350000", "110000"
"""A province official's own province (the factories' enterprises are in Fujian) and another."""


def create_official(
    registry: TestClient, role: str, name: str | None = None, province: str | None = None
) -> dict[str, Any]:
    """A new principal: its id, record and token (shown once)."""
    body = {"name": name or f"{role} official", "role": role, "province": province}
    answer = registry.post("/v1/principals", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return {"id": created["principal"]["id"], "token": created["token"], "body": created}


def officials(registry: TestClient) -> dict[str, dict[str, Any]]:
    """One official of each role; the province official acts for ``OWN``."""
    return {
        "ministry": create_official(registry, "ministry", "Wang Fang (MOFCOM)"),
        "province": create_official(registry, "province", "Lin Hui (Fujian DOC)", OWN),
        "operator": create_official(registry, "operator", "Zhao Lei (ops)"),
        "auditor": create_official(registry, "auditor", "Chen Jing (audit)"),
    }


def ask_registry(client: TestClient, registry: TestClient) -> None:
    """Point a service's principals directory at the registry app (over ASGI HTTP)."""
    transport = httpx.ASGITransport(app=registry.app)
    client.app.state.directory = RemoteDirectory(  # type: ignore[attr-defined]
        httpx.AsyncClient(transport=transport, base_url="http://registry")
    )


def as_official(token: str) -> dict[str, str]:
    return bearer(token)
