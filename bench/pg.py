"""A throw-away PostgreSQL database for one bench run: created fresh, always dropped."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from bench.procs import say

CONNECT_TIMEOUT_S = 2


def _libpq(url: str) -> str:
    """psycopg wants ``postgresql://``; SQLAlchemy-style URLs name their driver too."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def _with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def redacted(url: str) -> str:
    """The URL without its password, fit for a log or the results file."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def unreachable(url: str) -> str | None:
    """None when ``url`` answers within the timeout, else why not."""
    try:
        with psycopg.connect(_libpq(url), connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None


def _admin(url: str, statement: sql.Composed) -> None:
    with psycopg.connect(_libpq(url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        conn.execute(statement)


@contextmanager
def database(url: str) -> Iterator[str]:
    """CREATE DATABASE ucx_bench_<hex>; yields its URL; DROP ... WITH (FORCE) on the way out,
    also on error, Ctrl-C and SIGTERM (which the bench turns into KeyboardInterrupt)."""
    name = f"ucx_bench_{secrets.token_hex(6)}"
    _admin(url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    say(f"postgres: created database {name}")
    try:
        yield _with_database(url, name)
    finally:
        try:
            _admin(
                url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            say(f"postgres: dropped database {name}")
        except psycopg.Error as exc:
            say(f"postgres: could not drop database {name}: {exc}")
