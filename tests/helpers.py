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


def consume(spec: ServiceSpec, settings: BaseServiceSettings, *events: Any) -> None:
    """Apply events as the service's worker would: its own subscriptions' batch step (inbox
    dedupe, handlers, after-batch work) in one transaction."""
    from contracts import envelope
    from servicekit.consumer import BatchApplier, Record
    from servicekit.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        for subscription in spec.subscriptions(settings):
            mine = [e for e in events if e.type in subscription.handlers]
            if mine:
                records = [
                    Record(e.topic, 0, i, e.enterpriseid.encode(), envelope.encode(e))
                    for i, e in enumerate(mine)
                ]
                BatchApplier(engine, subscription, 1).apply(records)
    finally:
        engine.dispose()
