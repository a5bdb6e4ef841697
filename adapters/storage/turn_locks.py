"""One turn at a time per user across processes (PostgreSQL): the cross-process half of the
assistant's per-user lock.

Each process keeps its own lock per user (agent/service.py), which serialises a user's turns and lets
a retried message (same idempotency key) find the reply its first attempt stored. Across processes
that lock sees nothing: a retry of POST /api/assistant/ask that reaches another replica while the first
attempt still waits for the model ran the whole turn again (a second model call, a second answer
returned; the database kept one). So a turn also holds a PostgreSQL session advisory lock keyed by
the user, as migrations already do for start-up (adapters/storage/migrate.py):

- one connection per process holds all of its turns' locks (in autocommit, so no transaction stays
  open), instead of one pooled connection per turn in flight;
- the lock is taken with ``pg_try_advisory_lock`` and retried every ``POLL_SECONDS``, so waiting never
  blocks the shared connection; the retry then opens its turn, finds the stored reply and returns it;
- a process that dies loses its session, and with it its locks: the retry then runs the turn itself;
- a turn waits at most ``WAIT_SECONDS`` (far longer than a turn with every model retry), then runs
  anyway and says so in the log: the stored reply stays single either way (unique idempotency keys).

SQLite needs none of this: one process serves a database file's turns (the HTTP API and a polling
``bot`` process beside it never share a user's channel).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.storage.database import Database

log = logging.getLogger(__name__)

# The two-key form of advisory locks (its key space is apart from migrate.py's one-key lock): this
# namespace, then 32 bits of the user's hash. Two users sharing a hash only wait for each other.
NAMESPACE = 7310
POLL_SECONDS = 0.05
WAIT_SECONDS = 300.0

_TRY = text("SELECT pg_try_advisory_lock(:namespace, :key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:namespace, :key)")


def lock_key(identity: str, external_id: str, brand: str) -> int:
    digest = hashlib.blake2b(f"{identity}\0{external_id}\0{brand}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class TurnLocks:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None
        self._use = asyncio.Lock()  # one statement at a time on the shared connection

    @asynccontextmanager
    async def hold(self, identity: str, external_id: str, brand: str) -> AsyncIterator[None]:
        """Held while the block runs; waits while another process holds this user's lock."""
        if self.db.is_sqlite:
            yield
            return
        params = {"namespace": NAMESPACE, "key": lock_key(identity, external_id, brand)}
        held = await self._acquire(params)
        try:
            yield
        finally:
            if held:
                await self._release(params)

    async def _acquire(self, params: dict[str, int]) -> bool:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                taken = await self._execute(_TRY, params)
            except Exception:
                # Most likely the kept connection went stale (a database restart, an idle timeout):
                # it was dropped, so one more try on a fresh one.
                taken = await self._execute(_TRY, params)
            if taken:
                return True
            if time.monotonic() > deadline:
                log.warning("another process held this user's turn for over %.0f s; running this one anyway", WAIT_SECONDS)
                return False
            await asyncio.sleep(POLL_SECONDS)

    async def _release(self, params: dict[str, int]) -> None:
        try:
            await self._execute(_UNLOCK, params)
        except Exception as error:  # the session is gone, and with it the lock
            log.warning("turn lock not released (%s); its connection was dropped", type(error).__name__)

    async def _execute(self, statement: object, params: dict[str, int]) -> bool:
        async with self._use:
            try:
                if self._conn is None:
                    conn = await self.db.engine.connect()
                    self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                return bool((await self._conn.execute(statement, params)).scalar())  # type: ignore[call-overload]
            except Exception:
                await self._drop()
                raise

    async def _drop(self) -> None:
        """Forget a broken connection (its locks ended with its session); the next call opens another."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:
                pass

    async def close(self) -> None:
        async with self._use:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock_all()"))  # the pool keeps the session
                finally:
                    await conn.close()
