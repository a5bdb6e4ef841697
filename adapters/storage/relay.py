"""The manager relay's storage: topics and staff-chat links (relay_topics, relay_links) and manager
messages (messages with role ``manager``). Shared by every process through the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from adapters.storage.database import Database
from adapters.storage.models import ConsentRecord, Conversation, Lead, Message, RelayLink, RelayTopic, User, utcnow
from agent.relay import MANAGER_ROLE

TRANSCRIPT_ON_CARD = 10


@dataclass(frozen=True)
class ClientAddress:
    """Where a conversation's client is: their identity and the channel they last wrote from."""

    conversation_id: int
    identity: str
    external_id: str
    channel: str
    blocked: bool

    @property
    def telegram_chat_id(self) -> int | None:
        """The private chat to copy into, when the client last wrote from the bot chat."""
        if self.identity != "telegram" or self.channel != "telegram" or not self.external_id.isdigit():
            return None
        return int(self.external_id)


@dataclass
class CardFacts:
    """What the handoff card shows beyond the notice: the lead, the consent, the recent transcript."""

    lead: tuple[int, str] | None = None  # id, status
    consent: bool = False
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (role, text), oldest first


class RelayRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ topics and links

    async def topic(self, conversation_id: int) -> RelayTopic | None:
        async with self.db.session() as session:
            return await session.get(RelayTopic, conversation_id)

    async def save_topic(self, topic: RelayTopic) -> RelayTopic:
        topic.updated_at = utcnow()
        async with self.db.session() as session:
            merged = await session.merge(topic)
            await session.commit()
            await session.refresh(merged)
            return merged

    async def conversation_for_thread(self, chat_id: int, thread_id: int) -> int | None:
        async with self.db.session() as session:
            query = select(RelayTopic.conversation_id).where(RelayTopic.chat_id == chat_id, RelayTopic.thread_id == thread_id)
            return (await session.exec(query)).first()

    async def conversation_for_message(self, chat_id: int, message_id: int) -> int | None:
        async with self.db.session() as session:
            query = select(RelayLink.conversation_id).where(RelayLink.chat_id == chat_id, RelayLink.message_id == message_id)
            return (await session.exec(query)).first()

    async def link(self, chat_id: int, message_id: int, conversation_id: int, source_key: str | None = None) -> None:
        """Remember that this staff-chat message speaks for the conversation (a repeat is ignored)."""
        async with self.db.session() as session:
            session.add(RelayLink(chat_id=chat_id, message_id=message_id, conversation_id=conversation_id, source_key=source_key))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()

    async def link_for(self, source_key: str) -> RelayLink | None:
        async with self.db.session() as session:
            return (await session.exec(select(RelayLink).where(RelayLink.source_key == source_key))).first()

    async def copied(self, source_key: str) -> bool:
        async with self.db.session() as session:
            query = select(RelayLink.id).where(RelayLink.source_key == source_key)
            return (await session.exec(query)).first() is not None

    async def set_active(self, conversation_id: int, active: bool) -> bool:
        """Flip the topic's state; False when it already was (another process got there first)."""
        statement = (
            sa.update(RelayTopic)
            .where(col(RelayTopic.conversation_id) == conversation_id, col(RelayTopic.active).is_(not active))
            .values(active=active, updated_at=utcnow())
        )
        async with self.db.session() as session:
            changed = (await session.exec(statement)).rowcount  # type: ignore[call-overload]
            await session.commit()
            return bool(changed)

    async def idle_topics(self, now: datetime, *, grace: timedelta) -> list[RelayTopic]:
        """Active topics whose conversation is no longer in human mode (no manager wrote in time, or it
        ended elsewhere). ``grace`` skips topics touched a moment ago: a handoff stores its topic just
        before it stores the human mode."""
        query = (
            select(RelayTopic)
            .join(Conversation, col(Conversation.id) == col(RelayTopic.conversation_id))
            .where(
                col(RelayTopic.active).is_(True),
                col(RelayTopic.updated_at) < now - grace,
                sa.or_(col(Conversation.human_mode_until).is_(None), col(Conversation.human_mode_until) <= now),
            )
        )
        async with self.db.session() as session:
            return list((await session.exec(query)).all())

    # ------------------------------------------------------------------ the client

    async def client(self, conversation_id: int) -> ClientAddress | None:
        async with self.db.session() as session:
            found = (
                await session.exec(
                    select(User).join(Conversation, col(Conversation.user_id) == col(User.id)).where(Conversation.id == conversation_id)
                )
            ).first()
            if found is None:
                return None
            last = (
                await session.exec(
                    select(Message.channel)
                    .where(Message.conversation_id == conversation_id, Message.role == "user")
                    .order_by(col(Message.id).desc())
                    .limit(1)
                )
            ).first()
        channel = last or ("telegram" if found.identity == "telegram" else "api")
        return ClientAddress(conversation_id, found.identity, found.external_id, channel, found.blocked_at is not None)

    async def in_human_mode(self, identity: str, external_id: str, brand: str, now: datetime) -> bool:
        """Whether a manager has this user's conversation now (media are relayed only then)."""
        query = (
            select(Conversation.id)
            .join(User, col(User.id) == col(Conversation.user_id))
            .where(
                User.identity == identity, User.external_id == external_id, Conversation.brand == brand,
                col(Conversation.human_mode_until) > now,
            )
        )
        async with self.db.session() as session:
            return (await session.exec(query)).first() is not None

    async def card_facts(self, conversation_id: int, user_id: int) -> CardFacts:
        async with self.db.session() as session:
            lead = (
                await session.exec(
                    select(Lead.id, Lead.status).where(Lead.conversation_id == conversation_id).order_by(col(Lead.id).desc()).limit(1)
                )
            ).first()
            consent = (
                await session.exec(
                    select(ConsentRecord.granted)
                    .where(ConsentRecord.user_id == user_id, ConsentRecord.kind == "personal_data")
                    .order_by(col(ConsentRecord.id).desc())
                    .limit(1)
                )
            ).first()
            rows = (
                await session.exec(
                    select(Message.role, Message.content)
                    .where(Message.conversation_id == conversation_id)
                    .order_by(col(Message.id).desc())
                    .limit(TRANSCRIPT_ON_CARD)
                )
            ).all()
        return CardFacts(
            lead=(lead[0], lead[1]) if lead else None,  # type: ignore[index]
            consent=bool(consent),
            transcript=[(role, content) for role, content in reversed(rows)],
        )

    # ------------------------------------------------------------------ manager messages

    async def add_manager_message(
        self, conversation_id: int, key: str, content: str, meta: dict[str, Any], *, human_mode_until: datetime
    ) -> tuple[Message, bool]:
        """Store a manager's message once per key: (the message, whether it is new). A new one also
        keeps the conversation in human mode until ``human_mode_until``."""
        async with self.db.session() as session:
            existing = (await session.exec(select(Message).where(Message.idempotency_key == key))).first()
            if existing is not None:
                return existing, False
            message = Message(
                conversation_id=conversation_id, role=MANAGER_ROLE, channel="manager", content=content, meta=meta,
                idempotency_key=key,
            )
            session.add(message)
            try:
                await session.flush()
            except IntegrityError:  # another process stored it a moment ago
                await session.rollback()
                again = (await session.exec(select(Message).where(Message.idempotency_key == key))).one()
                return again, False
            await session.exec(
                sa.update(Conversation)
                .where(col(Conversation.id) == conversation_id)
                .values(last_message_at=message.created_at, human_mode_until=human_mode_until, updated_at=utcnow())
            )
            await session.commit()
            await session.refresh(message)
            return message, True

    async def manager_message(self, key: str) -> Message | None:
        async with self.db.session() as session:
            query = select(Message).where(Message.idempotency_key == key, Message.role == MANAGER_ROLE)
            return (await session.exec(query)).first()

    async def edit_manager_message(self, message_id: int, content: str) -> None:
        """A manager's edit: the transcript keeps the new words (and when they changed, not the old ones)."""
        async with self.db.session() as session:
            message = await session.get(Message, message_id)
            if message is None:  # the client withdrew consent meanwhile
                return
            message.content = content
            message.meta = {**message.meta, "edited_at": utcnow().isoformat()}
            session.add(message)
            await session.commit()

    async def set_delivery(self, message_id: int, delivery: str, **extra: Any) -> None:
        async with self.db.session() as session:
            message = await session.get(Message, message_id)
            if message is None:  # the client withdrew consent meanwhile: the transcript is gone
                return
            message.meta = {**message.meta, "delivery": delivery, **extra}
            session.add(message)
            await session.commit()

    async def take_waiting(self, conversation_id: int, key: str | None = None) -> list[Message]:
        """Manager messages a non-Telegram client has not received yet, oldest first; marked taken (by
        the request's ``key``, so a retry of that request, whose first answer may never have arrived,
        carries the same ones again)."""
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(Message)
                    .where(Message.conversation_id == conversation_id, Message.role == MANAGER_ROLE)
                    .order_by(col(Message.id))
                )
            ).all()
            taken = [m for m in rows if key is not None and (m.meta or {}).get("taken_by") == key]
            waiting = [m for m in rows if (m.meta or {}).get("delivery") == "waiting"]
            for message in waiting:
                message.meta = {**message.meta, "delivery": "taken", **({"taken_by": key} if key else {})}
                session.add(message)
            if waiting:
                await session.commit()
            return sorted(taken + waiting, key=lambda m: m.id or 0)
