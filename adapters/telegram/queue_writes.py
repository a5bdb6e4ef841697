"""How the update queue writes: one transaction at a time per process on SQLite, through
``Database.run`` (in place on the event-loop thread, never waiting for SQLite's lock there)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import nullcontext
from typing import TypeVar

from sqlalchemy import Connection

from adapters.storage.database import Database

T = TypeVar("T")


class QueueWrites:
    def __init__(self, db: Database) -> None:
        self.db = db
        # When the in-place attempt finds the database locked, the redo waits on the async engine;
        # the lock keeps this process's next queue writes behind it rather than racing it.
        self._turn: asyncio.Lock | None = asyncio.Lock() if db.is_sqlite else None

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one committed transaction and return what it returns."""
        async with self._turn or nullcontext():
            return await self.db.run(work)
