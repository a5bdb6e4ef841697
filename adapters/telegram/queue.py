"""The durable Telegram update queue shared by polling and webhook modes (table telegram_updates).

Life of a row: queued -> processing (claimed with a lease) -> done | retry (backoff) -> ... -> dead.
A chat's updates are handed out strictly in update_id order: a row is claimable only while no
earlier row of the same chat is still queued, retrying or processing. Different chats run at once.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, TextClause, Update, and_, bindparam, delete, exists, func, or_, select, text, update
from sqlalchemy.dialects import postgresql

from adapters.retry import Backoff
from adapters.storage.chat_keys import topic_key
from adapters.storage.database import Database
from adapters.storage.models import TelegramUpdate, UTCDateTime, utcnow
from adapters.telegram.group_commit import MAX_BATCH, GroupCommit
from adapters.telegram.queue_writes import QueueWrites

if TYPE_CHECKING:
    from agent.settings import Settings

TABLE = TelegramUpdate.__table__
ERROR_LENGTH = 1000

Row = tuple[int, int | None, str]  # update_id, chat_id, payload: a new row of the queue


@dataclass(frozen=True)
class ClaimedUpdate:
    id: int
    update_id: int
    chat_id: int | None
    payload: str
    attempts: int
    # When the service took the update in (the row's creation: getUpdates returned it, or the webhook
    # request came): the parent's wait for feedback counts from here, not from when a worker got to it.
    received_at: datetime | None = None


def chat_of(update: dict[str, Any]) -> int | None:
    """The ordering key of an update: its chat (a forum topic counts as a chat of its own), else the sender."""
    for key, value in update.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        message = value if "chat" in value else value.get("message")
        if not isinstance(message, dict):  # a forged update: the workers dead-letter it
            message = {}
        chat = message.get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            thread = message.get("message_thread_id")
            if message.get("is_topic_message") and isinstance(thread, int):
                return topic_key(chat["id"], thread)
            return chat["id"]
        sender = value.get("from") or value.get("user")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return sender["id"]
    return None


@lru_cache(maxsize=MAX_BATCH)
def _sqlite_insert(rows: int) -> str:
    """The insert of ``rows`` new rows in one statement, the values bound as they are: ?1 is the
    batch's timestamp, then each row's update_id, chat_id and payload. SQLAlchemy's insert of the
    same rows processed every bound value of every row in Python, which cost as much as SQLite's
    own work (py-spy of the service under bench/http_hot_paths.py's webhook load)."""
    values = ", ".join(f"(?{3 * i + 2}, ?{3 * i + 3}, ?{3 * i + 4}, 'queued', 0, ?1, ?1, ?1)" for i in range(rows))
    return (
        f"INSERT INTO {TABLE.name} (update_id, chat_id, payload, status, attempts, next_attempt_at, created_at, updated_at) "
        f"VALUES {values} ON CONFLICT (update_id) DO NOTHING RETURNING update_id"
    )


def _active(alias: str) -> TextClause:
    """Literally the partial indexes' condition: SQLite uses a partial index only for a query that
    repeats its WHERE term with the same constants (bound parameters don't count)."""
    return text(f"{alias}.status IN ('queued', 'retry', 'processing')")


class UpdateQueue:
    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> UpdateQueue:
        return cls(
            db,
            max_attempts=settings.telegram_queue_max_attempts,
            retry=Backoff(settings.telegram_queue_retry_base_seconds, settings.telegram_queue_retry_max_seconds),
            lease_seconds=settings.telegram_queue_lease_seconds,
            retention_hours=settings.telegram_queue_retention_hours,
        )

    def __init__(
        self,
        db: Database,
        *,
        max_attempts: int = 5,
        retry: Backoff = Backoff(2.0, 3600.0),  # TELEGRAM_QUEUE_RETRY_BASE_SECONDS / _MAX_SECONDS
        lease_seconds: float = 60.0,
        retention_hours: float = 48.0,
    ) -> None:
        self.db = db
        self.max_attempts = max_attempts
        self.retry = retry
        self.lease = timedelta(seconds=lease_seconds)
        self.retention = timedelta(hours=retention_hours)
        # Set when this process queues something (fresh_rows) or finishes an update, so local
        # workers claim without waiting for a poll.
        self.wakeup = asyncio.Event()
        self.fresh_rows = False
        # Webhook requests being stored now, and when the last one was (loop time): workers ration
        # their claims while requests arrive.
        self.ingesting = 0
        self.last_ingest = float("-inf")
        # New rows go in through _sqlite_insert's statement on SQLite, with the batch's timestamp as
        # SQLAlchemy stores it (the claim compares the stored texts), and through SQLAlchemy's insert
        # on PostgreSQL. RETURNING names the new rows: psycopg reports no rowcount for this insert.
        # The dialect's processor (the decorator's, then SQLite's own string format): the type's own
        # returns a naive datetime that sqlite3's default adapter formats without ".000000".
        dialect = db.engine.dialect
        self._stamp = TABLE.c.created_at.type.dialect_impl(dialect).bind_processor(dialect) if db.is_sqlite else None
        self._insert = (
            postgresql.insert(TABLE)
            .on_conflict_do_nothing(index_elements=["update_id"])
            .returning(TABLE.c.update_id)
        )
        self._writes = QueueWrites(db)
        self._claim = self._claim_statement()
        self._complete = (
            update(TABLE)
            .where(TABLE.c.id.in_(bindparam("ids", expanding=True)), TABLE.c.locked_by == bindparam("worker"))
            .where(TABLE.c.status == "processing")
            .values(
                status="done",
                last_error=None,
                locked_by=None,
                locked_until=None,
                updated_at=bindparam("now", type_=UTCDateTime()),
            )
        )
        self._inserts: GroupCommit[Row, bool] = GroupCommit(self._insert_rows)
        self._completions: GroupCommit[tuple[int, str], None] = GroupCommit(self._complete_rows)

    async def _insert_rows(self, rows: list[Row]) -> list[bool]:
        now = utcnow()  # one moment for the batch: it is committed as one
        stamp = self._stamp

        def work(conn: Connection) -> set[int]:
            if stamp is not None:
                values = (stamp(now), *chain.from_iterable(rows))
                return set(conn.exec_driver_sql(_sqlite_insert(len(rows)), values).scalars())
            params = [
                {"update_id": u, "chat_id": c, "payload": p, "status": "queued", "attempts": 0,
                 "next_attempt_at": now, "created_at": now, "updated_at": now}
                for u, c, p in rows
            ]
            return set(conn.execute(self._insert, params).scalars())

        inserted: set[int] = await self._writes.run(work)
        self.fresh_rows = True
        self.wakeup.set()
        results = []
        for update_id, _, _ in rows:  # the same update twice in one batch: the first is new, the second a duplicate
            results.append(update_id in inserted)
            inserted.discard(update_id)
        return results

    async def enqueue(self, update_id: int, chat_id: int | None, payload: str) -> bool:
        """Commit one update; False when this update_id is already queued (a duplicate delivery)."""
        self.ingesting += 1
        try:
            return await self._inserts.submit((update_id, chat_id, payload))
        finally:
            self.ingesting -= 1
            self.last_ingest = asyncio.get_running_loop().time()

    async def add(self, update_id: int, chat_id: int, payload: str) -> bool:
        """Commit work of this service's own (a relay job): like ``enqueue``, without counting as a
        webhook request, so the workers do not ration their claims for it."""
        return await self._inserts.submit((update_id, chat_id, payload))

    async def enqueue_many(self, updates: list[dict[str, Any]]) -> int:
        """Commit a getUpdates batch in one transaction; returns how many were new."""
        if not updates:
            return 0
        rows = [(u["update_id"], chat_of(u), json.dumps(u, ensure_ascii=False)) for u in updates]
        return sum(await self._insert_rows(rows))

    def _claim_statement(self) -> Update:
        """Built once; values are bound per claim (building the aliases cost more than running it)."""
        now = bindparam("now", type_=UTCDateTime())
        row, earlier = TABLE.alias("c"), TABLE.alias("p")
        waits_for_earlier = exists().where(
            _active("p"),
            earlier.c.chat_id == row.c.chat_id,
            earlier.c.update_id < row.c.update_id,
        )
        due = or_(
            and_(row.c.status.in_(("queued", "retry")), row.c.next_attempt_at <= now),
            # A dead worker's claim: the lease ran out while it was processing.
            and_(row.c.status == "processing", row.c.locked_until < now, row.c.attempts < self.max_attempts),
        )
        candidates = (
            select(row.c.id)
            .where(_active("c"), due, ~waits_for_earlier)
            .order_by(row.c.update_id)
            .limit(bindparam("limit"))
        )
        if not self.db.is_sqlite:
            candidates = candidates.with_for_update(skip_locked=True, of=row)
        return (
            update(TABLE)
            .where(TABLE.c.id.in_(candidates.scalar_subquery()))
            .values(
                status="processing",
                locked_by=bindparam("worker"),
                locked_until=bindparam("locked_until", type_=UTCDateTime()),
                attempts=TABLE.c.attempts + 1,
                updated_at=now,
            )
            .returning(
                TABLE.c.id, TABLE.c.update_id, TABLE.c.chat_id, TABLE.c.payload, TABLE.c.attempts, TABLE.c.created_at
            )
        )

    async def claim(self, worker: str, limit: int) -> list[ClaimedUpdate]:
        """Atomically take up to ``limit`` due updates, at most one per chat (the head of its line)."""
        now = utcnow()
        values = {"now": now, "limit": limit, "worker": worker, "locked_until": now + self.lease}
        rows = await self._writes.run(lambda conn: conn.execute(self._claim, values).all())
        return sorted((ClaimedUpdate(*r) for r in rows), key=lambda c: c.update_id)

    async def _finish(self, item: ClaimedUpdate, worker: str, **values: Any) -> None:
        statement = (
            update(TABLE)
            .where(TABLE.c.id == item.id, TABLE.c.locked_by == worker, TABLE.c.status == "processing")
            .values(locked_by=None, locked_until=None, updated_at=utcnow(), **values)
        )
        await self._writes.run(lambda conn: conn.execute(statement))

    async def _complete_rows(self, items: list[tuple[int, str]]) -> list[None]:
        now = utcnow()
        values = [{"ids": [i for i, w in items if w == worker], "worker": worker, "now": now} for worker in {w for _, w in items}]
        await self._writes.run(lambda conn: [conn.execute(self._complete, v) for v in values])
        return [None] * len(items)

    async def complete(self, item: ClaimedUpdate, worker: str) -> None:
        await self._completions.submit((item.id, worker))

    async def fail(self, item: ClaimedUpdate, worker: str, error: str, *, permanent: bool = False) -> str:
        """Schedule a retry with exponential backoff, or dead-letter it; returns the new status."""
        error = error[:ERROR_LENGTH]
        if permanent or item.attempts >= self.max_attempts:
            await self._finish(item, worker, status="dead", last_error=error)
            return "dead"
        delay = timedelta(seconds=self.retry.delay(item.attempts))
        await self._finish(item, worker, status="retry", last_error=error, next_attempt_at=utcnow() + delay)
        return "retry"

    async def release(self, item: ClaimedUpdate, worker: str) -> None:
        """Hand an unfinished update back at shutdown without counting the interrupted attempt."""
        await self._finish(item, worker, status="queued", attempts=TABLE.c.attempts - 1, next_attempt_at=utcnow())

    async def extend_leases(self, worker: str) -> None:
        """Heartbeat: keep this worker's claims alive while their updates are still running."""
        statement = (
            update(TABLE)
            .where(TABLE.c.locked_by == worker, TABLE.c.status == "processing")
            .values(locked_until=utcnow() + self.lease)
        )
        await self._writes.run(lambda conn: conn.execute(statement))

    async def confirm(self, item: ClaimedUpdate, worker: str) -> bool:
        """Whether this claim of the update may send its reply, checked right before the send; the lease
        is renewed when the claim is still held. False only when the update was taken over: its lease
        lapsed (a starved event loop renewed it too late) and it was claimed again — by another process
        or by this one (the same worker name: ``attempts`` tells the claims apart) — or that claim
        already finished it. The new claim sends the stored reply. A row dead-lettered meanwhile by
        ``maintain`` (a slow last attempt) has no other claim: this one still answers."""
        mine = (TABLE.c.id == item.id, TABLE.c.locked_by == worker, TABLE.c.attempts == item.attempts)
        renew = update(TABLE).where(*mine, TABLE.c.status == "processing").values(locked_until=utcnow() + self.lease)
        now_held = select(TABLE.c.status, TABLE.c.locked_by, TABLE.c.attempts).where(TABLE.c.id == item.id)

        def check(conn: Connection) -> bool:
            if conn.execute(renew.returning(TABLE.c.id)).first() is not None:
                return True
            row = conn.execute(now_held).first()
            if row is None:  # only finished rows are purged (retention, a consent withdrawal's scrub)
                return False
            taken_over = row.status == "done" or (
                row.status == "processing" and (row.locked_by, row.attempts) != (worker, item.attempts)
            )
            return not taken_over

        return await self._writes.run(check)

    async def maintain(self) -> tuple[int, int]:
        """Dead-letter updates whose worker died on every attempt; purge done rows past retention."""
        now = utcnow()
        abandoned = (
            update(TABLE)
            .where(TABLE.c.status == "processing", TABLE.c.locked_until < now, TABLE.c.attempts >= self.max_attempts)
            .values(
                status="dead",
                locked_by=None,
                locked_until=None,
                updated_at=now,
                last_error="the worker stopped while processing it on every attempt",
            )
        )
        purge = delete(TABLE).where(TABLE.c.status == "done", TABLE.c.updated_at < now - self.retention)
        return await self._writes.run(lambda conn: (conn.execute(abandoned).rowcount, conn.execute(purge).rowcount))

    async def stats(self) -> dict[str, Any]:
        """Counts per status and the oldest waiting update (diagnostics)."""
        async with self.db.engine.connect() as conn:
            counts = dict((await conn.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status))).all())
            oldest = (
                await conn.execute(select(func.min(TABLE.c.created_at)).where(TABLE.c.status.in_(("queued", "retry"))))
            ).scalar()
        return {
            "counts": {s: counts.get(s, 0) for s in ("queued", "processing", "retry", "done", "dead")},
            "oldest_waiting_at": oldest.isoformat() if oldest else None,
        }
