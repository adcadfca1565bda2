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


def sql(client: TestClient, statement: str, **params: Any) -> list[Any]:
    """Run SQL on the database behind a service client (to look, or to move time)."""
    from sqlalchemy import create_engine, text

    from servicekit.db import normalise_url

    engine = create_engine(normalise_url(client.app.state.settings.database_url))  # type: ignore[attr-defined]
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def consume(spec: ServiceSpec, settings: BaseServiceSettings, event: Any) -> None:
    """Apply an event with the service's own consumer handlers, as its worker would."""
    from sqlalchemy.orm import Session

    from servicekit.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session, session.begin():
            for subscription in spec.subscriptions(settings):
                handler = subscription.handlers.get(event.type)
                if handler is not None:
                    handler(session, event)
    finally:
        engine.dispose()
