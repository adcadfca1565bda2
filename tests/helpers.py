"""Helpers shared by the tests: admin credentials and the service-over-HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from servicekit import migrate
from servicekit.cli import ServiceSpec
from servicekit.settings import BaseServiceSettings

ADMIN_TOKEN = "test-admin-token-7f3a"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def service_client(
    spec: ServiceSpec, database_url: str, **settings: Any
) -> Iterator[tuple[TestClient, BaseServiceSettings]]:
    """The service's real ASGI app over HTTP (httpx), on a freshly migrated database."""
    migrate.upgrade(spec.migrations, database_url)
    config = spec.settings().model_copy(
        update={"database_url": database_url, "admin_token": ADMIN_TOKEN, **settings}
    )
    with TestClient(spec.create_app(config), raise_server_exceptions=False) as client:
        yield client, config
