"""Engines and migrations for the feedback database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalize_database_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` URLs too; we always talk through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_engine_for(url: str, *, pool_size: int = 5) -> Engine:
    """An engine that checks connections before use, so a restarted PostgreSQL is reconnected."""
    return create_engine(normalize_database_url(url), pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size,
                         connect_args={"connect_timeout": 3})


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(url), revision)
