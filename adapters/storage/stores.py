"""The core's storage ports (agent/state.py): a turn's reads and writes in SQL Core (turn_sql.py),
leads and consents through the repositories."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from adapters.storage import turn_sql as sql
from adapters.storage.database import Database
from adapters.storage.models import ConsentRecord, Lead, utcnow
from adapters.storage.repositories import ConsentRepository, LeadRepository
from adapters.storage.token_totals import TokenTotals
from agent.state import ConversationState, LeadRequest, NewMessage, StoredMessage, TurnStart, UsageRecord

log = logging.getLogger(__name__)


class SqlStore:
    def __init__(self, db: Database, leads: LeadRepository, consents: ConsentRepository) -> None:
        self.db = db
        self.leads = leads
        self.consents = consents
        self.tokens = TokenTotals(self._tokens_in_database)

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
    ) -> TurnStart:
        key = message.idempotency_key if message is not None else None
        find = {"identity": identity, "external_id": external_id, "brand": brand,
                "reply_key": key + sql.REPLY_KEY_SUFFIX if key else None}
        now = utcnow()
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(sql.FIND_USER, find)).first()
            if row is not None and row.reply_content is not None:
                meta = row.reply_meta or {}
                return TurnStart(stored_reply=dict(meta.get("reply") or {"text": row.reply_content}))
            # A concurrent first message of the same user (another brand, another process) may insert the
            # user or the conversation first: the insert is then skipped and the row read again.
            if row is None:
                values = {"identity": identity, "external_id": external_id, "first_name": first_name,
                          "username": username, "source": source, "created_at": now}
                await conn.execute(sql.insert_once_into(conn, sql.users), values)
                row = (await conn.execute(sql.FIND_USER, find)).one()
            else:
                changes: dict[str, Any] = {}
                if source and not row.source:
                    changes["source"] = source  # the first-touch source is set once, never overwritten
                if first_name and row.first_name != first_name:
                    changes["first_name"] = first_name
                if username and row.username != username:
                    changes["username"] = username
                if changes:
                    await conn.execute(sql.UPDATE_USER, {"user_id": row.id, **changes})
                    row = (await conn.execute(sql.FIND_USER, find)).one()
            if row.conversation_id is None:
                values = {"user_id": row.id, "brand": brand, "profile": {}, "state": {}, "handoff_notice_sent": False,
                          "created_at": now, "updated_at": now}
                await conn.execute(sql.insert_once_into(conn, sql.conversations), values)
                row = (await conn.execute(sql.FIND_USER, find)).one()
            state = sql.state_of(row, brand)
            if message is not None and await sql.insert_message(conn, state.conversation_id, "user", message, now):
                await sql.update_conversation(conn, state.conversation_id, {"last_message_at": now})
            await conn.commit()
        return TurnStart(state=state)

    async def finish_turn(self, state: ConversationState, reply: NewMessage, usage: list[UsageRecord]) -> None:
        now = utcnow()
        try:
            async with self.db.engine.begin() as conn:
                values = sql.state_values(state, now)
                if await sql.insert_message(conn, state.conversation_id, "assistant", reply, now):
                    values["last_message_at"] = now
                await sql.update_conversation(conn, state.conversation_id, values)
                if usage:
                    await sql.insert_usage(conn, usage, now)
        except IntegrityError:
            # The conversation was deleted during the turn (the user withdrew consent): nothing to keep.
            log.warning("conversation %s vanished during its turn; the reply is not stored", state.conversation_id)
            return
        self.tokens.add(usage, now)

    async def load_by_id(self, conversation_id: int) -> ConversationState | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(sql.FIND_CONVERSATION, {"conversation_id": conversation_id})).first()
        return sql.state_of(row, row.brand) if row is not None else None

    async def save(self, state: ConversationState) -> None:
        async with self.db.engine.begin() as conn:
            await sql.update_conversation(conn, state.conversation_id, sql.state_values(state, utcnow()))

    async def recent_messages(self, conversation_id: int, *, limit: int) -> list[StoredMessage]:
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(sql.RECENT_MESSAGES, {"conversation_id": conversation_id, "limit": limit})).all()
        return [StoredMessage(role=r.role, content=r.content, meta=r.meta or {}) for r in reversed(rows)]

    async def record_usage(self, usage: list[UsageRecord]) -> None:
        if not usage:
            return
        now = utcnow()
        async with self.db.engine.begin() as conn:
            await sql.insert_usage(conn, usage, now)
        self.tokens.add(usage, now)

    async def tokens_since(self, since: datetime, *, user_id: int | None = None) -> int:
        return await self.tokens.since(since, user_id=user_id)

    async def _tokens_in_database(self, since: datetime, user_id: int | None) -> int:
        query, params = (sql.TOKENS_SINCE, {"since": since}) if user_id is None else (
            sql.USER_TOKENS_SINCE, {"since": since, "user_id": user_id})
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(query, params)).scalar_one())

    # LeadStore

    async def consent_granted(self, user_id: int, kind: str) -> bool:
        async with self.db.engine.connect() as conn:
            return bool((await conn.execute(sql.LATEST_CONSENT, {"user_id": user_id, "kind": kind})).scalar())

    async def record_consent(
        self, *, user_id: int, kind: str, granted: bool, channel: str, text_version: str, telegram_id: int | None
    ) -> None:
        await self.consents.record(
            ConsentRecord(
                user_id=user_id,
                kind=kind,
                granted=granted,
                channel=channel,
                text_version=text_version,
                telegram_id=telegram_id,
            )
        )

    async def recent_lead(self, user_id: int, phone: str, since: datetime) -> int | None:
        lead = await self.leads.recent_for(user_id, phone, since)
        return lead.id if lead is not None else None

    async def create_lead(self, lead: LeadRequest, *, outbox_provider: str | None) -> int:
        row = await self.leads.create(Lead(**lead.model_dump()), outbox_provider=outbox_provider)
        assert row.id is not None
        return row.id
