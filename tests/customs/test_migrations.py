"""The gates-that-hold migration on a database that already holds customs' rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text

from customs.__main__ import SPEC
from servicekit import migrate
from servicekit.db import make_engine

BEFORE = "996d65aa5dfa"
T = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)


def test_refusals_keep_their_reason_as_the_only_reason_and_bills_carry_many_cars(
    database_url: str,
) -> None:
    migrate.upgrade(SPEC.migrations, database_url, BEFORE)
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO brokers (id, name, customs_code, created_at) "
                "VALUES ('b-1', 'Xiamen Haitong', '3502980123', :t)"
            ),
            {"t": T},
        )
        conn.execute(
            text(
                "INSERT INTO refused_departures (id, declaration_no, vin, enterprise_uscc, "
                "reason, refused_at) VALUES ('r-1', 'D1', 'LSVAU2180N2183294', "
                "'91350100M000100Y43', 'declaration_not_released', :t)"
            ),
            {"t": T},
        )
    migrate.upgrade(SPEC.migrations, database_url)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT reasons, step FROM refused_departures")).one()
        for no, vin in (("D2", "LSVAU2180N2183294"), ("D3", "LSVAU2180N2183295")):
            conn.execute(
                text(
                    "INSERT INTO declarations (declaration_no, vin, enterprise_uscc, broker_id, "
                    "status, reasons, reason_details, port_of_loading, destination_country, "
                    "declared_at, lodged_at, bill_of_lading) VALUES (:no, :vin, "
                    "'91350100M000100Y43', 'b-1', 'exported', '[]', '{}', 'CNXMN', 'KZ', :t, :t, "
                    "'COSU6312458790')"
                ),
                {"no": no, "vin": vin, "t": T},
            )
    reasons = row.reasons if isinstance(row.reasons, list) else json.loads(row.reasons)
    assert (reasons, row.step) == (["declaration_not_released"], "departure")
    config = migrate.config(SPEC.migrations, database_url)
    with pytest.raises(RuntimeError, match="COSU6312458790"):  # one car per B/L back then
        command.downgrade(config, BEFORE)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM declarations WHERE declaration_no = 'D3'"))
    command.downgrade(config, BEFORE)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM refused_departures")).scalar_one() == 1
    engine.dispose()
