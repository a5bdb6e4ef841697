"""How the update queue writes: one transaction at a time per process on SQLite, done in place.

SQLite has a single writer. Through aiosqlite every statement, BEGIN and COMMIT is a hop to a
worker thread and back, and while the event loop is busy (webhook requests and workers share it)
each hop waits for the GIL: a small commit that SQLite does in well under a millisecond took tens
of milliseconds, holding the write lock all along. So on SQLite the queue's short, indexed writes
run through a synchronous engine right on the event-loop thread, one at a time (WAL with
synchronous=NORMAL: no fsync per commit). They never wait for a lock there: with busy_timeout 0,
a database held by another connection or process answers "locked" at once and the write is redone
on the async engine, which waits in its thread. PostgreSQL always uses the async engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from adapters.storage.database import Database
from adapters.storage.engine import sync_url

T = TypeVar("T")


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _in_place_engine(db: Database) -> Engine | None:
    if not db.is_sqlite or make_url(db.url).database in (None, "", ":memory:"):
        return None
    engine = create_engine(sync_url(db.url), connect_args={"timeout": 0})
    event.listen(engine, "connect", _pragmas)
    return engine


def _locked(error: OperationalError) -> bool:
    text = str(error.orig).lower()
    return "locked" in text or "busy" in text


class QueueWrites:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._turn: asyncio.Lock | None = asyncio.Lock() if db.is_sqlite else None
        self._in_place = _in_place_engine(db)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one committed transaction and return what it returns."""
        async with self._turn or nullcontext():
            if self._in_place is not None:
                try:
                    with self._in_place.begin() as conn:
                        return work(conn)
                except OperationalError as error:
                    if not _locked(error):
                        raise
            async with self.db.engine.begin() as conn:
                return await conn.run_sync(work)

    def close(self) -> None:
        if self._in_place is not None:
            self._in_place.dispose()
