"""Apply Alembic migrations programmatically (start-up, scripts and tests share this).

Every process migrates at start (the API, the bot, a Render web service and its worker), so two may
start together on a fresh database: without a lock both create the same tables and one dies with
"table already exists". ``upgrade`` holds a cross-process lock for the whole upgrade — PostgreSQL's
session advisory lock, or an exclusive ``flock`` on a file next to the SQLite database — and the one
that waited then finds the schema at head and does nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from adapters.storage.engine import sync_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; escape it so passwords with % survive.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


# Any constant both processes agree on; it only has to differ from other advisory locks on the server.
PG_MIGRATION_LOCK_KEY = 7_310_412_001


@contextmanager
def migration_lock(database_url: str) -> Iterator[None]:
    """Held by one process at a time for each database (in-memory SQLite needs none)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            yield
            return
        database = Path(url.database)
        database.parent.mkdir(parents=True, exist_ok=True)
        with open(database.with_name(database.name + ".migrate-lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file is closed
            yield
        return
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def upgrade(database_url: str) -> None:
    with migration_lock(database_url):
        command.upgrade(alembic_config(database_url), "head")


def is_up_to_date(database_url: str) -> bool:
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head
    finally:
        engine.dispose()
