"""Apply Alembic migrations programmatically (start-up, scripts and tests share this).

Every process migrates at start (the API, the bot, a Render web service and its worker), so two may
start together on a fresh database: without a lock both create the same tables and one dies with
"table already exists". ``upgrade`` holds a cross-process lock for the whole upgrade — PostgreSQL's
session advisory lock, or an exclusive ``flock`` on a file next to the SQLite database — and the one
that waited then finds the schema at head and does nothing.

Start-up mostly meets two cases that need no migration at all: a database already at head (every
restart) and an empty one (a first deploy, each test database, bench/startup.py). Importing Alembic
and running each revision in turn cost ~0.1-0.2 s of start-up, so both are answered without Alembic:
the head revision is read from the revision files' ``revision``/``down_revision`` lines, an empty
database gets the tables from the models' metadata (``SQLModel.metadata.create_all``) and the
version row, in one transaction, under the same lock. Alembic still upgrades any database that holds
an older revision (or tables without a version). tests/test_storage.py checks that both paths give the
same schema on SQLite and PostgreSQL.
"""

from __future__ import annotations

import ast
import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    pool,
    text,
)
from sqlalchemy.engine import make_url

from adapters.storage.engine import install_sqlite_pragmas, is_sqlite, sync_url

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

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


@cache
def head_revision() -> str | None:
    """The head of migrations/versions, read from each file's ``revision`` and ``down_revision``
    assignments without importing Alembic; None when that is not one plain chain (merges, branch
    labels, a file it cannot read): the caller then asks Alembic."""
    revisions: dict[str, object] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values: dict[str, object] = {}
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            return None
        if values.get("branch_labels") or values.get("depends_on"):
            return None
        revisions[revision] = down
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def _version_table() -> Table:
    """The table Alembic keeps the revision in, as Alembic creates it (DefaultImpl.version_table_impl)."""
    return Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )


def _current_revision(conn: Connection) -> tuple[str | None, bool]:
    """The database's revision (None without a version row) and whether it holds any table at all."""
    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE not in tables:
        return None, bool(tables)
    versions = [row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    return (versions[0] if len(versions) == 1 else None), True


def _engine(database_url: str) -> Engine:
    url = sync_url(database_url)
    engine = create_engine(url, poolclass=pool.NullPool)
    if is_sqlite(url):
        install_sqlite_pragmas(engine)

        # pysqlite leaves DDL outside any transaction; BEGIN ourselves so the empty database gets all
        # of its tables and the version row, or nothing (PostgreSQL's DDL is transactional anyway).
        @event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection: object, _record: object) -> None:
            dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")

    return engine


def create_at_head(conn: Connection, head: str) -> None:
    """An empty database's schema from the models' metadata, stamped at ``head``."""
    from sqlmodel import SQLModel

    from adapters.storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

    SQLModel.metadata.create_all(conn)
    version = _version_table()
    version.create(conn)
    conn.execute(version.insert().values(version_num=head))


def upgrade(database_url: str) -> None:
    with migration_lock(database_url):
        head = head_revision()
        if head is not None:
            engine = _engine(database_url)
            try:
                with engine.begin() as conn:
                    current, has_tables = _current_revision(conn)
                    if current == head:
                        return
                    if current is None and not has_tables:
                        create_at_head(conn, head)
                        log.info("new database: schema created at revision %s", head)
                        return
            finally:
                engine.dispose()
        from alembic import command  # an older schema: Alembic runs the revisions it lacks

        command.upgrade(alembic_config(database_url), "head")


def is_up_to_date(database_url: str) -> bool:
    head = head_revision()
    if head is None:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return _current_revision(conn)[0] == head
    finally:
        engine.dispose()
