"""The database handle every adapter shares: engine, sessions, URL, the migration step, and
``run``: short synchronous transactions for the hot paths (a turn's reads and writes, the update queue).

``run`` exists because of SQLite. SQLite has a single writer, and through aiosqlite every statement,
BEGIN and COMMIT is a hop to a worker thread and back; while the event loop is busy each hop waits for
the GIL, so a commit SQLite does in well under a millisecond took tens of milliseconds, holding the
write lock all along, and a turn's ~15 hops were most of its CPU. So on a SQLite file the work runs
through a synchronous engine right on the event-loop thread, one transaction at a time (WAL with
synchronous=NORMAL: no fsync per commit). It never waits for a lock there: with busy_timeout 0, a
database held by another connection or process answers "locked" at once, and the work is redone from
the start on the async engine, which waits in its thread. PostgreSQL always uses the async engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from adapters.storage import migrate  # Alembic itself is imported only to upgrade an older schema
from adapters.storage.engine import (
    create_engine,
    in_place_engine,
    is_sqlite,
    normalize_database_url,
    ping,
    session_factory,
    sqlite_url,
)
from agent.paths import DataPaths
from agent.settings import Settings

T = TypeVar("T")


def database_url_for(settings: Settings, paths: DataPaths) -> str:
    if settings.database_url is not None:
        return normalize_database_url(settings.database_url.get_secret_value())
    return sqlite_url(paths.database_path)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url)
        self._sessions = session_factory(self.engine)
        self._in_place = in_place_engine(url)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @property
    def sync_engines(self) -> list[Engine]:
        """Every engine statements run on, for event listeners (instrumentation, tests)."""
        return [self.engine.sync_engine, *([self._in_place] if self._in_place is not None else [])]

    @property
    def backend(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one committed transaction and return what it returns.

        ``work`` may run twice (on SQLite, when the in-place attempt finds the database locked it is
        rolled back and redone), so it must not change anything outside the transaction."""
        if self._in_place is not None:
            try:
                with self._in_place.begin() as conn:
                    return work(conn)
            except OperationalError as error:
                if not _locked(error):
                    raise
        async with self.engine.begin() as conn:
            return await conn.run_sync(work)

    async def migrate(self) -> None:
        # Alembic is synchronous; keep it off the event loop.
        await asyncio.to_thread(migrate.upgrade, self.url)

    async def is_migrated(self) -> bool:
        return await asyncio.to_thread(migrate.is_up_to_date, self.url)

    async def ping(self) -> None:
        await ping(self.engine)

    async def dispose(self) -> None:
        if self._in_place is not None:
            self._in_place.dispose()
        await self.engine.dispose()


def _locked(error: OperationalError) -> bool:
    text = str(error.orig).lower()
    return "locked" in text or "busy" in text
