"""Every service's migrations build exactly its models' schema, and upgrade a database that
already holds data from the first revision."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from customs.__main__ import SPEC as CUSTOMS
from customs.models import Base as CustomsBase
from inspection.__main__ import SPEC as INSPECTION
from inspection.models import Base as InspectionBase
from registry.__main__ import SPEC as REGISTRY
from registry.models import Base as RegistryBase
from scoring.__main__ import SPEC as SCORING
from scoring.models import Base as ScoringBase
from servicekit import migrate
from servicekit.db import make_engine

SERVICES = {
    "registry": (REGISTRY, RegistryBase),
    "inspection": (INSPECTION, InspectionBase),
    "customs": (CUSTOMS, CustomsBase),
    "scoring": (SCORING, ScoringBase),
}


@pytest.mark.parametrize("service", list(SERVICES))
def test_migrations_match_the_models(database_url: str, service: str) -> None:
    spec, base = SERVICES[service]
    migrate.upgrade(spec.migrations, database_url)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), base.metadata)
    engine.dispose()
    # JSON/boolean server defaults only exist in migrations (for rows already there)
    assert [d for d in diff if d[0] != "modify_default"] == []


def test_station_keys_survive_the_upgrade_that_moved_them(database_url: str) -> None:
    from datetime import UTC, date, datetime

    from sqlalchemy import text

    migrate.upgrade(INSPECTION.migrations, database_url, "619f74091921")  # keys on stations
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO stations (id, name, accreditation, province, "
                "accreditation_valid_until, api_key_hash, status, created_at) VALUES "
                "('s-1', 'Xiamen Station', 'CNAS L1', '350000', :d, :h, 'active', :t)"
            ),
            {"d": date(2027, 1, 1), "h": "a" * 64, "t": datetime.now(UTC)},
        )
    migrate.upgrade(INSPECTION.migrations, database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT station_id, key_hash FROM station_keys")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("s-1", "a" * 64)]
