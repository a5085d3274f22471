"""Alembic environment: the URL comes from the config set by ``movierec.storage.migrate``
(or ``alembic.ini`` + ``MOVIEREC_DATABASE_URL`` when run by hand)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from movierec.storage.database import normalize_database_url
from movierec.storage.tables import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or os.environ.get("MOVIEREC_DATABASE_URL")
if not url:
    raise SystemExit("set MOVIEREC_DATABASE_URL to the PostgreSQL database to migrate")

engine = create_engine(normalize_database_url(url), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
