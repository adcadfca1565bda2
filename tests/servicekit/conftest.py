"""Fixtures of servicekit's own tests: real databases with only servicekit's (or the test's
own) tables, no service."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, MetaData

from servicekit.db import make_engine

Tables = Callable[[MetaData], Engine]


@pytest.fixture
def engine_with(database_url: str) -> Iterator[Tables]:
    """``engine_with(metadata)``: an engine on the fresh database of each kind under test,
    with ``metadata``'s tables created; disposed after the test."""
    engines: list[Engine] = []

    def create(metadata: MetaData) -> Engine:
        engine = make_engine(database_url)
        engines.append(engine)
        metadata.create_all(engine)
        return engine

    yield create
    for engine in engines:
        engine.dispose()
