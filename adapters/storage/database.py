"""The database handle every adapter shares: engine, sessions, URL and the migration step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from adapters.storage import migrate
from adapters.storage.engine import (
    create_engine,
    is_sqlite,
    normalize_database_url,
    ping,
    session_factory,
    sqlite_url,
)
from agent.paths import DataPaths
from agent.settings import Settings


def database_url_for(settings: Settings, paths: DataPaths) -> str:
    if settings.database_url is not None:
        return normalize_database_url(settings.database_url.get_secret_value())
    return sqlite_url(paths.database_path)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url)
        self._sessions = session_factory(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @property
    def backend(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def migrate(self) -> None:
        # Alembic is synchronous; keep it off the event loop.
        await asyncio.to_thread(migrate.upgrade, self.url)

    async def is_migrated(self) -> bool:
        return await asyncio.to_thread(migrate.is_up_to_date, self.url)

    async def ping(self) -> None:
        await ping(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()
