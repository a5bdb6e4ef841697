"""The CRM outbox table: atomic claims with a lease, and recording each push's outcome on the lead.

A claim is an UPDATE … WHERE id IN (due rows) AND <still due> RETURNING id. On SQLite it is one
statement under the database's write lock (a conditional update); on PostgreSQL the due rows are first
selected FOR UPDATE SKIP LOCKED in the same transaction, so concurrent workers never block on or share
a row. A row left in `processing` by a crashed process is claimed again once
its lease (locked_until) has passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlmodel import col, select

from adapters.storage.database import Database
from adapters.storage.models import CrmOutbox, Lead, utcnow

MAX_ERROR_CHARS = 500


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _due(provider: str, now: datetime) -> Any:
        return and_(
            CrmOutbox.provider == provider,
            or_(
                and_(CrmOutbox.status == "pending", col(CrmOutbox.next_attempt_at) <= now),
                and_(CrmOutbox.status == "processing", col(CrmOutbox.locked_until) < now),
            ),
        )

    async def claim(self, provider: str, *, limit: int, lease_seconds: float) -> list[CrmOutbox]:
        now = utcnow()
        due = self._due(provider, now)
        oldest_due = select(CrmOutbox.id).where(due).order_by(col(CrmOutbox.next_attempt_at), col(CrmOutbox.id)).limit(limit)
        async with self.db.session() as session:
            if self.db.is_sqlite:
                # One statement under SQLite's write lock; the repeated due-condition makes it conditional.
                targets: Any = oldest_due.scalar_subquery()
            else:
                # Locked rows are skipped, so concurrent workers take different rows without waiting.
                # (Run apart from the UPDATE: as its subquery, PostgreSQL may rescan it and take more.)
                targets = list((await session.exec(oldest_due.with_for_update(skip_locked=True))).all())
            claimed = (
                update(CrmOutbox)
                .where(col(CrmOutbox.id).in_(targets), due)
                .values(
                    status="processing",
                    locked_until=now + timedelta(seconds=lease_seconds),
                    attempts=CrmOutbox.attempts + 1,
                    updated_at=now,
                )
                .returning(CrmOutbox.id)
            )
            ids = list((await session.exec(claimed)).scalars())  # type: ignore[call-overload]
            await session.commit()
            if not ids:
                return []
            rows = await session.exec(select(CrmOutbox).where(col(CrmOutbox.id).in_(ids)).order_by(col(CrmOutbox.id)))
            return list(rows.all())

    async def _finish(self, row: CrmOutbox, outbox: dict[str, Any], lead: dict[str, Any]) -> None:
        """Release the row's lease and record the outcome on the row and its lead in one transaction."""
        now = utcnow()
        async with self.db.session() as session:
            await session.exec(
                update(CrmOutbox).where(CrmOutbox.id == row.id).values(locked_until=None, updated_at=now, **outbox)
            )
            await session.exec(update(Lead).where(Lead.id == row.lead_id).values(updated_at=now, **lead))
            await session.commit()

    async def delivered(self, row: CrmOutbox, crm_ids: dict[str, str], crm_id: str | None) -> None:
        await self._finish(
            row,
            {"status": "delivered", "crm_ids": crm_ids, "last_error": None},
            {"crm_status": "delivered", "crm_id": crm_id, "crm_error": None},
        )

    async def retry_later(self, row: CrmOutbox, error: str, next_attempt_at: datetime, crm_ids: dict[str, str]) -> None:
        message = error[:MAX_ERROR_CHARS]
        await self._finish(
            row,
            {"status": "pending", "next_attempt_at": next_attempt_at, "last_error": message, "crm_ids": crm_ids},
            # The lead stays pending; the admin view shows why it hasn't arrived yet.
            {"crm_error": f"retrying: {message}"[:MAX_ERROR_CHARS]},
        )

    async def failed(self, row: CrmOutbox, error: str, crm_ids: dict[str, str]) -> None:
        message = error[:MAX_ERROR_CHARS]
        await self._finish(
            row,
            {"status": "failed", "last_error": message, "crm_ids": crm_ids},
            {"crm_status": "failed", "crm_error": message},
        )

    async def for_lead(self, lead_id: int) -> CrmOutbox | None:
        async with self.db.session() as session:
            return (await session.exec(select(CrmOutbox).where(CrmOutbox.lead_id == lead_id))).first()

    async def counts(self) -> dict[str, int]:
        """Rows per status, for diagnostics and tests."""
        async with self.db.session() as session:
            rows = await session.exec(select(CrmOutbox.status, func.count()).group_by(CrmOutbox.status))
            return {status: count for status, count in rows.all()}
