"""The core's storage ports (agent/state.py): a turn's reads and writes in SQL Core (turn_sql.py,
run by ``Database.run``), leads and consents through the repositories."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from adapters.storage import turn_sql as sql
from adapters.storage.database import Database
from adapters.storage.models import ConsentRecord, Lead, utcnow
from adapters.storage.repositories import ConsentRepository, LeadRepository
from adapters.storage.token_totals import SharedTokenTotals, TokenTotals
from adapters.storage.turn_locks import TurnLocks
from agent.state import ConversationState, EarlierLead, LeadRequest, NewMessage, StoredMessage, TurnStart, UsageRecord

log = logging.getLogger(__name__)


class SqlStore:
    def __init__(
        self, db: Database, leads: LeadRepository, consents: ConsentRepository, *, redis_url: str | None = None
    ) -> None:
        self.db = db
        self.leads = leads
        self.consents = consents
        # Budget totals: shared by every process through Redis when there is one (hard budgets).
        self.tokens: TokenTotals | SharedTokenTotals = (
            SharedTokenTotals(self._tokens_in_database, redis_url) if redis_url else TokenTotals(self._tokens_in_database)
        )
        self.turn_locks = TurnLocks(db)

    def exclusive(self, identity: str, external_id: str, brand: str) -> AbstractAsyncContextManager[None]:
        """The user's turns one at a time across processes (adapters/storage/turn_locks.py)."""
        return self.turn_locks.hold(identity, external_id, brand)

    async def load(
        self,
        identity: str,
        external_id: str,
        brand: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
        source: str | None = None,
    ) -> ConversationState:
        started = await self.open_turn(
            identity, external_id, brand, None, first_name=first_name, username=username, source=source
        )
        assert started.state is not None
        return started.state

    async def open_turn(
        self,
        identity: str,
        external_id: str,
        brand: str,
        message: NewMessage | None,
        *,
        first_name: str | None = None,
        username: str | None = None,
        source: str | None = None,
        context_messages: int = 0,
    ) -> TurnStart:
        now = utcnow()
        return await self.db.run(
            lambda conn: sql.open_turn(conn, identity, external_id, brand, message, first_name=first_name,
                                       username=username, source=source, now=now, context_messages=context_messages)
        )

    async def finish_turn(self, state: ConversationState, reply: NewMessage, usage: list[UsageRecord]) -> None:
        now = utcnow()
        try:
            await self.db.run(lambda conn: sql.finish_turn(conn, state, reply, usage, now))
        except IntegrityError:
            # The conversation was deleted during the turn (the user withdrew consent): nothing to keep.
            log.warning("conversation %s vanished during its turn; the reply is not stored", state.conversation_id)
            return
        await self.tokens.add(usage, now)

    async def load_by_id(self, conversation_id: int) -> ConversationState | None:
        return await self.db.run(lambda conn: sql.load_by_id(conn, conversation_id))

    async def save(self, state: ConversationState) -> None:
        now = utcnow()
        await self.db.run(lambda conn: sql.update_conversation(conn, state.conversation_id, sql.state_values(state, now)))

    async def recent_messages(self, conversation_id: int, *, limit: int) -> list[StoredMessage]:
        return await self.db.run(lambda conn: sql.recent_messages(conn, conversation_id, limit))

    async def record_usage(self, usage: list[UsageRecord]) -> None:
        if not usage:
            return
        now = utcnow()
        await self.db.run(lambda conn: sql.insert_usage(conn, usage, now))
        await self.tokens.add(usage, now)

    async def tokens_today(self, day_start: datetime, *, user_id: int) -> tuple[int, int]:
        return await self.tokens.user_and_total(day_start, user_id)

    async def _tokens_in_database(self, since: datetime, user_id: int | None) -> int:
        return await self.db.run(lambda conn: sql.tokens_since(conn, since, user_id))

    # LeadStore

    async def consent_granted(self, user_id: int, kind: str) -> bool:
        return await self.db.run(lambda conn: sql.consent_granted(conn, user_id, kind))

    async def record_consent(
        self, *, user_id: int, kind: str, granted: bool, channel: str, text_version: str, telegram_id: int | None
    ) -> None:
        await self.consents.record(
            ConsentRecord(
                user_id=user_id,
                kind=kind,
                granted=granted,
                event="granted" if granted else "refused",
                channel=channel,
                text_version=text_version,
                telegram_id=telegram_id,
            )
        )

    async def recent_leads(self, user_id: int, phone: str, since: datetime) -> list[EarlierLead]:
        return [
            EarlierLead(lead_id=lead.id, profile=lead.profile or {}, program_ids=lead.program_ids or [])
            for lead in await self.leads.recent_for(user_id, phone, since)
            if lead.id is not None
        ]

    async def annotate_lead(self, lead_id: int, *, note: str | None, name: str | None) -> None:
        await self.leads.annotate(lead_id, note=note, name=name)

    async def create_lead(self, lead: LeadRequest, *, outbox_provider: str | None) -> int:
        row = await self.leads.create(Lead(**lead.model_dump()), outbox_provider=outbox_provider)
        assert row.id is not None
        return row.id

    async def create_test_lead(self, *, brand: str, phone: str, name: str) -> int:
        lead = Lead(brand=brand, channel="telegram", source="leadtest", name=name, phone=phone, is_test=True)
        row = await self.leads.create(lead, outbox_provider=None)
        assert row.id is not None
        return row.id
