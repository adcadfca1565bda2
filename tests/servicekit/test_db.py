"""A read-only engine reads beside writers (on SQLite without the database's write lock) and
never writes."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from servicekit.db import is_sqlite, make_engine


def test_a_read_only_engine_reads_beside_a_writer_and_never_writes(database_url: str) -> None:
    writer = make_engine(database_url)
    reader = make_engine(database_url, read_only=True)
    count = text("SELECT count(*) FROM t")
    try:
        with writer.begin() as conn:
            conn.execute(text("CREATE TABLE t (n INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with reader.connect() as conn, conn.begin():
            assert conn.execute(count).scalar() == 1
            # a writer goes on while the read is open (a writer's engine would hold SQLite's
            # write lock here, and this insert would wait out the 30 s busy timeout)
            with writer.connect() as other:
                if is_sqlite(writer):
                    other.execute(text("PRAGMA busy_timeout=500"))
                    other.commit()
                with other.begin():
                    other.execute(text("INSERT INTO t VALUES (2)"))
            if is_sqlite(reader):
                assert conn.execute(count).scalar() == 1  # its snapshot
        with reader.connect() as conn, conn.begin(), pytest.raises(DBAPIError):
            conn.execute(text("INSERT INTO t VALUES (3)"))
        with writer.connect() as conn:
            assert conn.execute(count).scalar() == 2
    finally:
        writer.dispose()
        reader.dispose()
