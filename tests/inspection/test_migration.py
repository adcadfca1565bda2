"""The time-bounds migration on a database that already holds inspections: the posting time
moves to ``received_at``, older verdicts and vehicles keep NULL where the fact never reached
us (no policy file decided them; the endorsement date was not copied)."""

from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import text

from inspection.__main__ import SPEC
from servicekit import migrate
from servicekit.db import make_engine

import factories

BEFORE = "2ae45dc8bbc3"
POSTED = datetime(2026, 11, 27, 3, 15, tzinfo=UTC)


def test_existing_rows_keep_their_posting_time_as_received_at(database_url: str) -> None:
    migrate.upgrade(SPEC.migrations, database_url, BEFORE)
    vin = factories.vin()
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO known_vehicles (vin, enterprise_uscc, make, model, model_year, "
                "mileage_km, registered_at) VALUES (:v, :u, 'Geely', 'Emgrand', 2021, 52000, :t)"
            ),
            {"v": vin, "u": factories.uscc(), "t": POSTED},
        )
        conn.execute(
            text(
                "INSERT INTO inspections (id, vin, enterprise_uscc, station_id, inspected_at, "
                "odometer_km, verdict, first_inspection, items, failed_items, remarks, "
                "fraud_signals, certificate_no, valid_until, created_at, event_id, "
                "revoked_as_forged) VALUES ('i-1', :v, :u, 's-1', :t, 52800, 'pass', :true, "
                "'[]', '[]', '[]', '[]', 'EXC-2611-0000000000000000-0', :d, :t, 'e-1', :false)"
            ),
            {
                "v": vin,
                "u": factories.uscc(),
                "t": POSTED,
                "d": date(2027, 2, 25),
                "true": True,
                "false": False,
            },
        )
    migrate.upgrade(SPEC.migrations, database_url)
    with engine.connect() as conn:
        received, version = conn.execute(
            text("SELECT received_at, policy_version FROM inspections")
        ).one()
        endorsed = conn.execute(text("SELECT transfer_endorsed_on FROM known_vehicles")).scalar()
    assert (received is not None, version, endorsed) == (True, None, None)
    if not isinstance(received, datetime):  # SQLite hands the stored text back
        received = datetime.fromisoformat(received)
    assert (received if received.tzinfo else received.replace(tzinfo=UTC)) == POSTED
    command.downgrade(migrate.config(SPEC.migrations, database_url), BEFORE)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inspections")).scalar() == 1
    engine.dispose()
