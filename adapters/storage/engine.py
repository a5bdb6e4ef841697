"""Database engine: SQLite (WAL, busy timeout) by default, PostgreSQL when DATABASE_URL is set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_database_url(url: str) -> str:
    """Accept the plain postgres:// and postgresql:// URLs hosting providers hand out."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgresql+psycopg2", "postgresql+asyncpg"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername not in {"postgresql+psycopg", "sqlite+aiosqlite"}:
        raise ValueError(f"unsupported database driver {parsed.drivername!r}: use PostgreSQL or SQLite")
    return parsed.render_as_string(hide_password=False)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def sync_url(async_url: str) -> str:
    """The same database for synchronous users (Alembic, backup scripts)."""
    parsed = make_url(async_url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def install_sqlite_pragmas(sync_engine: Any, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        # NORMAL is durable across process crashes in WAL mode; only an OS crash may lose the last commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    event.listen(sync_engine, "connect", pragmas)


# hide_parameters: a database error's message (and so a logged traceback) never carries the values a
# statement was sent with: messages, names, phones.
def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass  # connecting will fail with a clear driver error, which health and preflight report
        engine = create_async_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
        )
        install_sqlite_pragmas(engine.sync_engine)
        return engine
    # Up to 30 connections a process, as before, but 20 of them kept: with 10 kept, many conversations at
    # once opened and closed overflow connections all the time (~1 connection per four turns, each a new
    # PostgreSQL backend process), on a 2-core host a fifth of a turn's CPU.
    return create_async_engine(url, pool_size=20, max_overflow=10, pool_pre_ping=True, hide_parameters=True)


def in_place_engine(url: str) -> Engine | None:
    """A synchronous engine on the same SQLite file that never waits for a lock (busy_timeout 0):
    None for PostgreSQL and in-memory SQLite (see Database.run)."""
    if not is_sqlite(url) or make_url(url).database in (None, "", ":memory:"):
        return None
    engine = create_sync_engine(sync_url(url), connect_args={"timeout": 0}, hide_parameters=True)
    install_sqlite_pragmas(engine, busy_timeout_ms=0)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
