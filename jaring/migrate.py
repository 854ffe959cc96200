"""Run Alembic migrations programmatically (``jaring migrate``), on SQLite or PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from jaring.settings import get_settings


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config pointing at Jaring's migrations and the given (or configured) database."""
    cfg = Config()
    cfg.set_main_option("script_location", "pipelines:migrations")
    url = database_url or get_settings().database_url
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    """Take the database schema down to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)
