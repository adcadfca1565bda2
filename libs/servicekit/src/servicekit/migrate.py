"""Alembic, the same way for every service: ``run_env`` is each env.py's whole body."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from servicekit.db import UtcDateTime, make_engine


def config(migrations: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(migrations: Path, url: str, revision: str = "head") -> None:
    command.upgrade(config(migrations, url), revision)


def _render_item(type_: str, obj: Any, _context: Any) -> str | Literal[False]:
    """Migrations hold plain SQLAlchemy types, never our Python-side decorators."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_env(metadata: MetaData, default_url: str) -> None:
    url = context.config.get_main_option("sqlalchemy.url") or default_url
    # SQLite rebuilds tables to alter them (batch mode): foreign keys must not fire meanwhile
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
                render_item=_render_item,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()
