"""The assistant's per-turn SQL in SQLAlchemy Core: the fewest round trips a turn can make.

A turn is two short transactions (``SqlStore.open_turn`` and ``finish_turn``). The ORM repositories
(repositories.py) keep everything else; a turn's ORM sessions, refreshes and merges were most of the
service's own cost per turn, and that cost is CPU on the event loop, so it grew with concurrency.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.storage.models import ConsentRecord, Conversation, Message, ModelUsage, User
from agent.state import ConversationState, NewMessage, Profile, UsageRecord

users = cast(sa.Table, User.__table__)
conversations = cast(sa.Table, Conversation.__table__)
messages = cast(sa.Table, Message.__table__)
usage_rows = cast(sa.Table, ModelUsage.__table__)
consents = cast(sa.Table, ConsentRecord.__table__)

REPLY_KEY_SUFFIX = ":reply"
replies = messages.alias("replies")
USER_COLUMNS = (users.c.id, users.c.identity, users.c.external_id, users.c.first_name, users.c.username, users.c.source)
CONVERSATION_COLUMNS = (
    conversations.c.id.label("conversation_id"),
    conversations.c.profile,
    conversations.c.state,
    conversations.c.human_mode_until,
    conversations.c.handoff_reason,
    conversations.c.handoff_notice_sent,
)


def insert_once(dialect_name: str, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING: a row whose unique key exists is skipped, not an error."""
    dialect = sqlite if dialect_name == "sqlite" else postgresql
    return dialect.insert(table).on_conflict_do_nothing()


# Statements are built once with bind parameters: building and cache-keying them per call cost more
# than running them.
_joined = users.outerjoin(
    conversations, sa.and_(conversations.c.user_id == users.c.id, conversations.c.brand == sa.bindparam("brand"))
).outerjoin(replies, replies.c.idempotency_key == sa.bindparam("reply_key"))
# The user, their conversation with the brand (NULLs when none yet) and the reply already stored for
# the update's key (NULLs when none, or when reply_key is None), in one SELECT.
FIND_USER = (
    sa.select(*USER_COLUMNS, *CONVERSATION_COLUMNS, replies.c.meta.label("reply_meta"), replies.c.content.label("reply_content"))
    .select_from(_joined)
    .where(users.c.identity == sa.bindparam("identity"), users.c.external_id == sa.bindparam("external_id"))
)
FIND_CONVERSATION = (
    sa.select(*USER_COLUMNS, *CONVERSATION_COLUMNS, conversations.c.brand)
    .select_from(conversations.join(users, users.c.id == conversations.c.user_id))
    .where(conversations.c.id == sa.bindparam("conversation_id"))
)
UPDATE_CONVERSATION = sa.update(conversations).where(conversations.c.id == sa.bindparam("conversation_id"))
UPDATE_USER = sa.update(users).where(users.c.id == sa.bindparam("user_id"))
INSERT_USAGE = sa.insert(usage_rows)
RECENT_MESSAGES = (
    sa.select(messages.c.role, messages.c.content, messages.c.meta)
    .where(messages.c.conversation_id == sa.bindparam("conversation_id"))
    .order_by(messages.c.id.desc())
    .limit(sa.bindparam("limit"))
)
LATEST_CONSENT = (
    sa.select(consents.c.granted)
    .where(consents.c.user_id == sa.bindparam("user_id"), consents.c.kind == sa.bindparam("kind"))
    .order_by(consents.c.id.desc())
    .limit(1)
)
TOKENS_SINCE = sa.select(sa.func.coalesce(sa.func.sum(usage_rows.c.total_tokens), 0)).where(
    usage_rows.c.created_at >= sa.bindparam("since", type_=usage_rows.c.created_at.type)
)
USER_TOKENS_SINCE = TOKENS_SINCE.where(usage_rows.c.user_id == sa.bindparam("user_id"))
_INSERT_ONCE = {
    (name, table.name): insert_once(name, table)
    for name in ("sqlite", "postgresql")
    for table in (users, conversations)
}
_INSERT_MESSAGE = {name: insert_once(name, messages).returning(messages.c.id) for name in ("sqlite", "postgresql")}


def insert_once_into(conn: AsyncConnection, table: sa.Table) -> Any:
    return _INSERT_ONCE[(conn.dialect.name, table.name)]


def state_of(row: Any, brand: str) -> ConversationState:
    return ConversationState(
        conversation_id=row.conversation_id,
        user_id=row.id,
        brand=brand,
        identity=row.identity,
        external_id=row.external_id,
        first_name=row.first_name,
        username=row.username,
        source=row.source,
        profile=Profile.model_validate(row.profile or {}),
        flow=dict(row.state or {}),
        human_mode_until=row.human_mode_until,
        handoff_reason=row.handoff_reason,
        handoff_notice_sent=bool(row.handoff_notice_sent),
    )


async def insert_message(
    conn: AsyncConnection, conversation_id: int, role: str, message: NewMessage, now: datetime
) -> bool:
    """Store the message; False when its idempotency key was stored before."""
    key = message.idempotency_key
    if key and role == "assistant":
        key += REPLY_KEY_SUFFIX
    values = {
        "conversation_id": conversation_id,
        "role": role,
        "channel": message.channel,
        "content": message.content,
        "meta": message.meta or {},
        "idempotency_key": key,
        "created_at": now,
    }
    return (await conn.execute(_INSERT_MESSAGE[conn.dialect.name], values)).first() is not None


def state_values(state: ConversationState, now: datetime) -> dict[str, Any]:
    return {
        "profile": state.profile.model_dump(exclude_none=True),
        "state": state.flow,
        "human_mode_until": state.human_mode_until,
        "handoff_reason": state.handoff_reason,
        "handoff_notice_sent": state.handoff_notice_sent,
        "updated_at": now,
    }


async def update_conversation(conn: AsyncConnection, conversation_id: int, values: dict[str, Any]) -> None:
    await conn.execute(UPDATE_CONVERSATION, {"conversation_id": conversation_id, **values})


async def insert_usage(conn: AsyncConnection, records: list[UsageRecord], now: datetime) -> None:
    rows = [
        {
            "conversation_id": record.conversation_id,
            "user_id": record.user_id,
            "model": record.model,
            "purpose": record.purpose,
            "input_tokens": record.usage.input_tokens,
            "output_tokens": record.usage.output_tokens,
            "total_tokens": record.usage.total_tokens,
            "created_at": now,
        }
        for record in records
    ]
    await conn.execute(INSERT_USAGE, rows)
