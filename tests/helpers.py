"""Helpers shared by the tests: admin credentials, the service-over-HTTP client, the
constraint walk and the window between a service's read and its write made certain."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    UniqueConstraint,
    create_engine,
    event,
    text,
)

from servicekit import migrate
from servicekit.cli import ServiceSpec
from servicekit.settings import BaseServiceSettings

ADMIN_TOKEN = "test-admin-token-7f3a"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

Constraint = tuple[str, tuple[str, ...]]
"""A unique or primary-key constraint as (table, columns)."""


def _unique(metadata: MetaData) -> Iterator[tuple[str, Constraint]]:
    """Every primary key, unique constraint and unique index: (its name, (table, columns))."""
    for table in metadata.sorted_tables:
        for constraint in table.constraints:
            if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint):
                yield str(constraint.name), (table.name, tuple(c.name for c in constraint.columns))
        for index in table.indexes:
            if index.unique:
                yield str(index.name), (table.name, tuple(c.name for c in index.columns))


def constraints(metadata: MetaData) -> set[Constraint]:
    """The models' unique and primary-key constraints, for a test that accounts for each."""
    return {found for _name, found in _unique(metadata)}


def constraint_names(metadata: MetaData) -> set[str]:
    """The same constraints by their names (the naming convention's ``pk_``/``uq_``...)."""
    return {name for name, _found in _unique(metadata)}


def assert_constraints_covered(
    metadata: MetaData,
    test_file: Path,
    server_drawn: dict[Constraint, str],
    answered: dict[Constraint, str],
) -> None:
    """Every constraint is either out of input's reach or has a named proof: a test in
    ``test_file`` (``name``) or in a module beside it (``module.name``)."""
    assert constraints(metadata) == server_drawn.keys() | answered.keys()
    assert not server_drawn.keys() & answered.keys()
    for proof in answered.values():
        module, _, name = proof.rpartition(".")
        source = (test_file.with_name(f"{module}.py") if module else test_file).read_text()
        assert f"\ndef {name}(" in source, f"{proof} is named as a proof but does not exist"


SERVICEKIT_DRAWN: dict[Constraint, str] = {
    ("outbox", ("id",)): "autoincrement",
    ("outbox", ("event_id",)): "an id the service draws per record: an event's uuid7, "
    "dlq-<uuid7> for a dead letter, redrive-<uuid7> for a letter redriven",
    ("audit_log", ("id",)): "autoincrement",
}
"""servicekit's outbox and audit log in every service: constraints on values only the service
chooses."""


@contextmanager
def before_insert(
    engine: Engine, table: str, act: Callable[[Connection], object], when: str = ""
) -> Iterator[None]:
    """``act(connection)`` runs just before each of the service's own ``INSERT INTO table``
    (whose parameters contain ``when``), on the service's own connection: inside its
    transaction, so SQLite's one writer is no deadlock, and rolled back with it."""
    busy = False

    def before(conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        nonlocal busy
        if busy or not statement.startswith(f"INSERT INTO {table} ") or when not in str(parameters):
            return
        busy = True
        try:
            act(conn)
        finally:
            busy = False

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)


@contextmanager
def row_lands_first(
    client: TestClient, table: str, row: str, when: str = "", **params: Any
) -> Iterator[None]:
    """A concurrent request's row (``row``, SQL with ``params``) lands just before each of the
    service's own ``INSERT INTO table``: the window between the service's read and its write,
    made certain. Rolled back with the service's statement, as a loser's transaction is."""
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    with before_insert(engine, table, lambda conn: conn.execute(text(row), params), when):
        yield


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
