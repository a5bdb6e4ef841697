"""One turn at a time per user across processes (PostgreSQL): the cross-process half of the
assistant's per-user lock.

Each process keeps its own lock per user (agent/service.py), which serialises a user's turns and lets
a retried message (same idempotency key) find the reply its first attempt stored. Across processes
that lock sees nothing: a retry of POST /api/assistant/ask that reaches another replica while the first
attempt still waits for the model ran the whole turn again (a second model call, a second answer
returned; the database kept one). So a turn also holds a PostgreSQL session advisory lock keyed by
the user, as migrations already do for start-up (adapters/storage/migrate.py):

- one connection per process holds all of its turns' locks (in autocommit, so no transaction stays
  open), instead of one pooled connection per turn in flight; the takes and releases asked for while a
  statement is in flight go together in the next one (many conversations at once would otherwise
  queue for the connection one round trip each);
- the lock is taken with ``pg_try_advisory_lock`` and retried every ``POLL_SECONDS``, so waiting never
  blocks the shared connection; the retry then opens its turn, finds the stored reply and returns it;
- a process that dies loses its session, and with it its locks: the retry then runs the turn itself;
- a turn waits at most ``WAIT_SECONDS`` (far longer than a turn with every model retry), then runs
  anyway and says so in the log: the stored reply stays single either way (unique idempotency keys).

SQLite takes no lock here: one process usually serves a database file's turns (the HTTP API and a
polling ``bot`` process beside it never share a user's channel); with WEB_CONCURRENCY > 1 on SQLite a
retry reaching another worker may run its turn twice (README, «Running N replicas»).

The locks are session locks: DATABASE_URL must not go through a transaction-mode pooler (README).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.storage.database import Database

log = logging.getLogger(__name__)

# The two-key form of advisory locks (its key space is apart from migrate.py's one-key lock): this
# namespace, then 32 bits of the user's hash. Two users sharing a hash only wait for each other.
NAMESPACE = 7310
POLL_SECONDS = 0.05
WAIT_SECONDS = 300.0

# One row per key, in the keys' order (a key twice is taken twice: the locks count per session).
_TRY = text(
    "SELECT pg_try_advisory_lock(:namespace, k) FROM unnest(CAST(:keys AS integer[])) WITH ORDINALITY AS t(k, n) ORDER BY n"
)
_UNLOCK = text(
    "SELECT pg_advisory_unlock(:namespace, k) FROM unnest(CAST(:keys AS integer[])) WITH ORDINALITY AS t(k, n) ORDER BY n"
)


@dataclass
class _Request:
    unlock: bool
    key: int
    answer: asyncio.Future[bool] | None  # None: a release nobody waits for (a cancelled take's lock)


def lock_key(identity: str, external_id: str, brand: str) -> int:
    digest = hashlib.blake2b(f"{identity}\0{external_id}\0{brand}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class TurnLocks:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None
        self._use = asyncio.Lock()  # one statement at a time on the shared connection
        self._held = 0  # turns holding their lock on the kept connection right now
        self._queue: list[_Request] = []  # asked for while a statement is in flight: the next one's
        self._sender: asyncio.Task[None] | None = None
        self._closed = False  # after close() nothing opens the connection again

    @asynccontextmanager
    async def hold(self, identity: str, external_id: str, brand: str) -> AsyncIterator[None]:
        """Held while the block runs; waits while another process holds this user's lock."""
        if self.db.is_sqlite:
            yield
            return
        key = lock_key(identity, external_id, brand)
        held = await self._acquire(key)
        self._held += held
        try:
            yield
        finally:
            if held:
                self._held -= 1
                await self._release(key)

    async def _acquire(self, key: int) -> bool:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                taken = await self._ask(False, key)
            except Exception:
                # Most likely the kept connection went stale (a database restart, an idle timeout):
                # it was dropped, so one more try on a fresh one.
                taken = await self._ask(False, key)
            if taken:
                return True
            if time.monotonic() > deadline:
                log.warning("another process held this user's turn for over %.0f s; running this one anyway", WAIT_SECONDS)
                return False
            await asyncio.sleep(POLL_SECONDS)

    async def _release(self, key: int) -> None:
        try:
            await self._ask(True, key)
        except Exception as error:  # the session is gone, and with it the lock
            log.warning("turn lock not released (%s); its connection was dropped", type(error).__name__)

    async def _ask(self, unlock: bool, key: int) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._enqueue(_Request(unlock, key, answer))
        try:
            return await answer
        except asyncio.CancelledError:
            # Cancelled after its answer came but before it ran on: a lock taken for it is let go.
            granted = not unlock and answer.done() and not answer.cancelled() and answer.exception() is None and answer.result()
            if granted and not self._closed:  # closed: close() lets every lock of the session go
                self._enqueue(_Request(True, key, None))
            raise

    def _enqueue(self, request: _Request) -> None:
        if self._closed:
            raise RuntimeError("the turn locks are closed")
        self._queue.append(request)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued())

    async def _send_queued(self) -> None:
        """Everything queued, in one statement per kind (releases first: they may free a take), until
        nothing is left."""
        while self._queue:
            batch, self._queue = self._queue, []
            releases = [r for r in batch if r.unlock]
            takes = [r for r in batch if not r.unlock]
            try:
                async with self._use:
                    for requests, statement in ((releases, _UNLOCK), (takes, _TRY)):
                        if requests:
                            answers = await self._execute(statement, [r.key for r in requests])
                            self._answer(requests, answers)
            except Exception as error:
                for request in batch:
                    if request.answer is not None and not request.answer.done():
                        request.answer.set_exception(error)

    def _answer(self, requests: list[_Request], answers: list[bool]) -> None:
        for request, answer in zip(requests, answers, strict=True):
            if request.answer is None:
                continue
            if request.answer.done():  # its turn was cancelled meanwhile: a lock it got is let go
                if answer and not request.unlock and not self._closed:
                    self._queue.append(_Request(True, request.key, None))
                continue
            request.answer.set_result(answer)

    async def _execute(self, statement: object, keys: list[int]) -> list[bool]:
        try:
            if self._conn is None:
                if self._closed:
                    raise RuntimeError("the turn locks are closed")
                conn = await self.db.engine.connect()
                self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await self._conn.execute(statement, {"namespace": NAMESPACE, "keys": keys})  # type: ignore[call-overload]
            return [bool(value) for value in result.scalars()]
        except Exception:
            await self._drop()
            raise

    async def _drop(self) -> None:
        """Forget a broken connection (its locks ended with its session); the next call opens another."""
        conn, self._conn = self._conn, None
        if conn is not None and self._held:
            # Their turns go on, but a retry reaching another process no longer waits for them.
            log.warning("turn lock connection dropped: %d turn(s) in flight lost their cross-process lock", self._held)
        if conn is not None:
            await self._discard(conn)

    @staticmethod
    async def _discard(conn: AsyncConnection) -> None:
        try:
            await conn.invalidate()
            await conn.close()
        except Exception:
            pass

    async def close(self) -> None:
        """Never raises: shutdown (Runtime.close) goes on to dispose the engine even when the kept
        connection went stale (a database restart, an idle timeout), and a dropped session holds no locks."""
        self._closed = True
        async with self._use:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await conn.execute(text("SELECT pg_advisory_unlock_all()"))  # the pool keeps the session
            except Exception as error:
                log.debug("turn locks not unlocked at close (%s); dropping their connection", type(error).__name__)
                await self._discard(conn)
                return
            try:
                await conn.close()
            except Exception as error:
                log.debug("turn lock connection not closed cleanly (%s)", type(error).__name__)
