"""SQLModel tables. Times are stored as naive UTC and handed back timezone-aware (UTCDateTime)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database (SQLite has no time zones), aware UTC in Python."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def _ts(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


def _opt_ts(**kwargs: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kwargs)


def _json(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_type=sa.JSON)


class User(SQLModel, table=True):
    """One person. Telegram users are keyed by their Telegram id in the bot and the Mini App alike."""

    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("identity", "external_id", name="uq_users_identity"),)

    id: int | None = Field(default=None, primary_key=True)
    identity: str = Field(max_length=16)  # telegram | api
    external_id: str = Field(max_length=128)
    first_name: str | None = Field(default=None, max_length=256)
    username: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=64)  # first-touch deep-link payload
    blocked_at: datetime | None = _opt_ts()  # Telegram answered 403: stop writing
    created_at: datetime = _ts()


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (sa.UniqueConstraint("user_id", "brand", name="uq_conversations_user_brand"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    brand: str = Field(max_length=32)
    profile: dict[str, Any] = _json()  # grade, goal, subject, format, name, phone, consents
    state: dict[str, Any] = _json()  # offline funnel step and other policy state
    human_mode_until: datetime | None = _opt_ts()
    handoff_reason: str | None = Field(default=None, max_length=500)
    handoff_notice_sent: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    last_message_at: datetime | None = _opt_ts(index=True)


class Message(SQLModel, table=True):
    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    role: str = Field(max_length=16)  # user | assistant | tool
    channel: str = Field(max_length=16)
    content: str = Field(sa_type=sa.Text)
    meta: dict[str, Any] = _json()  # tool calls, cards, quick replies
    # Set from the channel's own id (e.g. "tg:<update_id>") so a reprocessed update stores nothing twice.
    idempotency_key: str | None = Field(default=None, max_length=128, unique=True)
    created_at: datetime = _ts(index=True)


class Lead(SQLModel, table=True):
    __tablename__ = "leads"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id")
    brand: str = Field(max_length=32, index=True)
    channel: str = Field(max_length=16)
    source: str | None = Field(default=None, max_length=64, index=True)
    name: str | None = Field(default=None, max_length=256)
    phone: str = Field(max_length=32, index=True)
    profile: dict[str, Any] = _json()
    program_ids: list[str] = _json(list)
    status: str = Field(default="new", max_length=16, index=True)
    manager_note: str | None = Field(default=None, sa_type=sa.Text)
    crm_status: str = Field(default="pending", max_length=16)  # pending | delivered | failed | skipped
    crm_id: str | None = Field(default=None, max_length=64)
    crm_error: str | None = Field(default=None, max_length=500)
    is_test: bool = False
    idempotency_key: str | None = Field(default=None, max_length=128, unique=True)
    created_at: datetime = _ts(index=True)
    updated_at: datetime = _ts()


class ConsentRecord(SQLModel, table=True):
    """Proof of consent under 152-ФЗ: who, when, where, which text version."""

    __tablename__ = "consent_records"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=32)  # personal_data | marketing
    granted: bool  # the state after this record: True only for a grant
    # granted | refused (the user said no when asked) | withdrawn (a later withdrawal of a grant: /forget,
    # «удалите мои данные», the admin API); migration 0004.
    event: str = Field(default="granted", max_length=16, sa_column_kwargs={"server_default": "granted"})
    channel: str = Field(max_length=16)  # telegram | miniapp | api | admin
    text_version: str = Field(max_length=32)
    telegram_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = _ts(index=True)


_ACTIVE_UPDATE = sa.text("status IN ('queued', 'retry', 'processing')")


class TelegramUpdate(SQLModel, table=True):
    """The durable update queue shared by polling and webhook modes."""

    __tablename__ = "telegram_updates"
    # Partial indexes over the active rows keep claiming cheap whatever the backlog (migration 0002).
    __table_args__ = (
        sa.Index("ix_telegram_updates_active", "update_id", sqlite_where=_ACTIVE_UPDATE, postgresql_where=_ACTIVE_UPDATE),
        sa.Index(
            "ix_telegram_updates_active_chat",
            "chat_id",
            "update_id",
            sqlite_where=_ACTIVE_UPDATE,
            postgresql_where=_ACTIVE_UPDATE,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    update_id: int = Field(sa_type=sa.BigInteger, unique=True)
    # No index of its own (migration 0005): the claim reads the partial index above.
    chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    payload: str = Field(sa_type=sa.Text)  # the raw JSON as Telegram sent it
    status: str = Field(default="queued", max_length=16)  # queued | processing | retry | done | dead
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    locked_by: str | None = Field(default=None, max_length=64)
    locked_until: datetime | None = _opt_ts()
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CrmOutbox(SQLModel, table=True):
    """A lead waiting to be pushed to the CRM; the lead row itself is committed first."""

    __tablename__ = "crm_outbox"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id", unique=True)
    provider: str = Field(max_length=16)
    status: str = Field(default="pending", max_length=16)  # pending | processing | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = _ts(index=True)
    locked_until: datetime | None = _opt_ts()
    last_error: str | None = Field(default=None, max_length=1000)
    crm_ids: dict[str, Any] = _json()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ModelUsage(SQLModel, table=True):
    __tablename__ = "model_usage"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    model: str = Field(max_length=64)
    purpose: str = Field(default="turn", max_length=32)  # turn | web_fallback | vector_search
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    created_at: datetime = _ts(index=True)


class RelayTopic(SQLModel, table=True):
    """Where a handed-off conversation lives in MANAGER_CHAT_ID: a forum topic (thread_id), or, in a
    group without topics, the card the managers reply to (thread_id NULL). One per conversation, and a
    topic belongs to exactly one conversation."""

    __tablename__ = "relay_topics"
    __table_args__ = (sa.UniqueConstraint("chat_id", "thread_id", name="uq_relay_topics_thread"),)

    conversation_id: int = Field(foreign_key="conversations.id", primary_key=True)
    chat_id: int = Field(sa_type=sa.BigInteger)
    thread_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    card_message_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    active: bool = True  # the conversation is with a manager; False once it went back to the bot
    closed: bool = False  # /close closed the forum topic; a later handoff reopens it
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class RelayLink(SQLModel, table=True):
    """A message in MANAGER_CHAT_ID that speaks for a conversation (the card, each copied client
    message): a manager's reply to it reaches that client. ``source_key`` (the client's update) keeps a
    reprocessed update from being copied twice."""

    __tablename__ = "relay_links"
    __table_args__ = (sa.UniqueConstraint("chat_id", "message_id", name="uq_relay_links_message"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=sa.BigInteger)
    message_id: int = Field(sa_type=sa.BigInteger)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    source_key: str | None = Field(default=None, max_length=128, unique=True)
    created_at: datetime = _ts()
