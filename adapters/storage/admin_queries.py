"""Read-mostly queries behind the admin API: leads with filters, conversations, dead-lettered updates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from adapters.storage.database import Database
from adapters.storage.models import Conversation, Lead, Message, TelegramUpdate, User, utcnow


@dataclass(frozen=True)
class LeadFilter:
    status: str | None = None
    source: str | None = None
    brand: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None  # exclusive
    text: str | None = None  # name, phone or manager note contains it

    def apply(self, query: SelectOfScalar[Any]) -> SelectOfScalar[Any]:
        if self.status:
            query = query.where(Lead.status == self.status)
        if self.source:
            query = query.where(Lead.source == self.source)
        if self.brand:
            query = query.where(Lead.brand == self.brand)
        if self.created_from:
            query = query.where(Lead.created_at >= self.created_from)
        if self.created_to:
            query = query.where(Lead.created_at < self.created_to)
        if self.text:
            needle = self.text.strip()
            digits = "".join(ch for ch in needle if ch.isdigit())
            conditions = [
                col(Lead.name).icontains(needle, autoescape=True),
                col(Lead.manager_note).icontains(needle, autoescape=True),
            ]
            if digits:  # "8 999 123-45-67" finds +79991234567 by its digits
                conditions.append(col(Lead.phone).contains(digits[-10:], autoescape=True))
            query = query.where(or_(*conditions))
        return query


@dataclass(frozen=True)
class ConversationRow:
    conversation: Conversation
    user: User | None
    last_message: Message | None
    in_human_mode: bool


class AdminQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def leads(self, where: LeadFilter, *, offset: int, limit: int) -> tuple[Sequence[Lead], int]:
        async with self.db.session() as session:
            total = (await session.exec(where.apply(select(func.count()).select_from(Lead)))).one()
            query = where.apply(select(Lead)).order_by(col(Lead.created_at).desc(), col(Lead.id).desc())
            rows = (await session.exec(query.offset(offset).limit(limit))).all()
            return rows, int(total)

    async def update_lead(self, lead_id: int, *, status: str | None, manager_note: str | None) -> Lead | None:
        async with self.db.session() as session:
            lead = await session.get(Lead, lead_id)
            if lead is None:
                return None
            if status is not None:
                lead.status = status
            if manager_note is not None:
                lead.manager_note = manager_note
            lead.updated_at = utcnow()
            session.add(lead)
            await session.commit()
            await session.refresh(lead)
            return lead

    async def conversations(
        self, *, now: datetime, offset: int, limit: int, handoff_only: bool = False, brand: str | None = None
    ) -> tuple[list[ConversationRow], int]:
        async with self.db.session() as session:
            # A Mini App lead opens a conversation without messages: nothing to read, so not listed.
            base = select(Conversation).where(col(Conversation.last_message_at).is_not(None))
            counter = select(func.count()).select_from(Conversation).where(col(Conversation.last_message_at).is_not(None))
            if handoff_only:
                base = base.where(col(Conversation.human_mode_until) > now)
                counter = counter.where(col(Conversation.human_mode_until) > now)
            if brand:
                base = base.where(Conversation.brand == brand)
                counter = counter.where(Conversation.brand == brand)
            total = int((await session.exec(counter)).one())
            page = (
                await session.exec(
                    base.order_by(
                        col(Conversation.last_message_at).desc().nulls_last(), col(Conversation.id).desc()
                    )
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
            ids = [c.id for c in page]
            last_ids = select(func.max(Message.id)).where(col(Message.conversation_id).in_(ids))
            last_ids = last_ids.group_by(Message.conversation_id)
            last_messages = (await session.exec(select(Message).where(col(Message.id).in_(last_ids)))).all()
            last = {m.conversation_id: m for m in last_messages}
            user_ids = {c.user_id for c in page}
            users = {u.id: u for u in (await session.exec(select(User).where(col(User.id).in_(user_ids)))).all()}
        rows = [
            ConversationRow(
                conversation=c,
                user=users.get(c.user_id),
                last_message=last.get(c.id),
                in_human_mode=c.human_mode_until is not None and c.human_mode_until > now,
            )
            for c in page
        ]
        return rows, total

    async def transcript(
        self, conversation_id: int, *, limit: int
    ) -> tuple[Conversation, User | None, list[Message]] | None:
        async with self.db.session() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                return None
            user = await session.get(User, conversation.user_id)
            query = (
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(col(Message.id).desc())
                .limit(limit)
            )
            messages = list(reversed((await session.exec(query)).all()))
            return conversation, user, messages

    async def dead_updates(self, *, offset: int, limit: int) -> tuple[Sequence[TelegramUpdate], int]:
        async with self.db.session() as session:
            counter = select(func.count()).select_from(TelegramUpdate).where(TelegramUpdate.status == "dead")
            total = (await session.exec(counter)).one()
            query = (
                select(TelegramUpdate)
                .where(TelegramUpdate.status == "dead")
                .order_by(col(TelegramUpdate.updated_at).desc(), col(TelegramUpdate.id).desc())
                .offset(offset)
                .limit(limit)
            )
            return (await session.exec(query)).all(), int(total)
