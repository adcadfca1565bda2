"""pytest fixtures shared by every service's tests (``pytest_plugins = ["servicekit.testing"]``):
a real embedded broker on a free port, and real databases: SQLite always, PostgreSQL too when
``UCX_TEST_POSTGRES_URL`` is set (CI sets it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from servicekit.broker import EmbeddedBroker
from servicekit.topics import provision

POSTGRES_ENV = "UCX_TEST_POSTGRES_URL"
DATABASE_KINDS = ["sqlite", *(["postgres"] if os.environ.get(POSTGRES_ENV) else [])]


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        provision(running.bootstrap_servers)
        yield running


class PostgresDatabase:
    """A fresh database on the server at ``UCX_TEST_POSTGRES_URL``, dropped afterwards."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.name = f"ucx_test_{uuid.uuid4().hex[:12]}"

    @property
    def url(self) -> str:
        base, _, _ = self.server_url.rpartition("/")
        return f"{base}/{self.name}"

    def create(self) -> str:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return self.url

    def drop(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )


def new_database(kind: str, directory: Path) -> tuple[str, PostgresDatabase | None]:
    if kind == "sqlite":
        return f"sqlite:///{directory / f'{uuid.uuid4().hex[:8]}.db'}", None
    database = PostgresDatabase(os.environ[POSTGRES_ENV])
    return database.create(), database


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind under test."""
    url, database = new_database(request.param, tmp_path)
    try:
        yield url
    finally:
        if database is not None:
            database.drop()
