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

from sqlalchemy import and_, or_, update
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

    async def delivered(self, row: CrmOutbox, crm_ids: dict[str, str], crm_id: str | None) -> None:
        now = utcnow()
        async with self.db.session() as session:
            await session.exec(
                update(CrmOutbox)
                .where(CrmOutbox.id == row.id)
                .values(status="delivered", crm_ids=crm_ids, locked_until=None, last_error=None, updated_at=now)
            )
            await session.exec(
                update(Lead)
                .where(Lead.id == row.lead_id)
                .values(crm_status="delivered", crm_id=crm_id, crm_error=None, updated_at=now)
            )
            await session.commit()

    async def retry_later(self, row: CrmOutbox, error: str, next_attempt_at: datetime, crm_ids: dict[str, str]) -> None:
        now = utcnow()
        message = error[:MAX_ERROR_CHARS]
        async with self.db.session() as session:
            await session.exec(
                update(CrmOutbox)
                .where(CrmOutbox.id == row.id)
                .values(
                    status="pending",
                    next_attempt_at=next_attempt_at,
                    locked_until=None,
                    last_error=message,
                    crm_ids=crm_ids,
                    updated_at=now,
                )
            )
            # The lead stays pending; the admin view shows why it hasn't arrived yet.
            await session.exec(
                update(Lead).where(Lead.id == row.lead_id).values(crm_error=f"retrying: {message}"[:MAX_ERROR_CHARS], updated_at=now)
            )
            await session.commit()

    async def failed(self, row: CrmOutbox, error: str, crm_ids: dict[str, str]) -> None:
        now = utcnow()
        message = error[:MAX_ERROR_CHARS]
        async with self.db.session() as session:
            await session.exec(
                update(CrmOutbox)
                .where(CrmOutbox.id == row.id)
                .values(status="failed", locked_until=None, last_error=message, crm_ids=crm_ids, updated_at=now)
            )
            await session.exec(
                update(Lead).where(Lead.id == row.lead_id).values(crm_status="failed", crm_error=message, updated_at=now)
            )
            await session.commit()

    async def for_lead(self, lead_id: int) -> CrmOutbox | None:
        async with self.db.session() as session:
            return (await session.exec(select(CrmOutbox).where(CrmOutbox.lead_id == lead_id))).first()

    async def counts(self) -> dict[str, int]:
        """Rows per status, for diagnostics and tests."""
        async with self.db.session() as session:
            rows = (await session.exec(select(CrmOutbox.status))).all()
        counts: dict[str, int] = {}
        for status in rows:
            counts[status] = counts.get(status, 0) + 1
        return counts
