"""The assistant's per-turn SQL in SQLAlchemy Core: the fewest statements a turn can make.

A turn is two short transactions (``open_turn`` and ``finish_turn``), synchronous functions of a
Connection that ``Database.run`` executes (in place on SQLite). The ORM repositories (repositories.py)
keep everything else; a turn's ORM sessions, refreshes and merges, and then each statement's hop
through aiosqlite, were most of the service's own cost per turn, and that cost is CPU on the event
loop, so it grew with concurrency.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.storage.models import ConsentRecord, Conversation, Message, ModelUsage, User
from agent.leads import PERSONAL_DATA
from agent.state import ConversationState, NewMessage, Profile, StoredMessage, TurnStart, UsageRecord
from agent.text_safety import plain_name

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
).outerjoin(
    replies,
    sa.and_(replies.c.idempotency_key == sa.bindparam("reply_key"), replies.c.conversation_id == conversations.c.id),
)
# The user's latest personal-data consent answer, read with the user (NULL when none): a turn's preload
# then costs no statement of its own.
def _latest_consent(user_id: Any, kind: Any) -> sa.Select[Any]:
    """The user's latest answer for a kind of consent (no row: never asked)."""
    return sa.select(consents.c.granted).where(consents.c.user_id == user_id, consents.c.kind == kind).order_by(
        consents.c.id.desc()
    ).limit(1)


_USER_CONSENT = _latest_consent(users.c.id, PERSONAL_DATA).scalar_subquery().label("consent_granted")
# The user, their conversation with the brand (NULLs when none yet) and the reply already stored for
# the update's key in that conversation (NULLs when none, or when reply_key is None), and the consent,
# in one SELECT: a key never finds another user's turn.
FIND_USER = (
    sa.select(*USER_COLUMNS, *CONVERSATION_COLUMNS, replies.c.meta.label("reply_meta"),
              replies.c.content.label("reply_content"), _USER_CONSENT)
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
LATEST_CONSENT = _latest_consent(sa.bindparam("user_id"), sa.bindparam("kind"))
TOKENS_SINCE = sa.select(sa.func.coalesce(sa.func.sum(usage_rows.c.total_tokens), 0)).where(
    usage_rows.c.created_at >= sa.bindparam("since", type_=usage_rows.c.created_at.type)
)
USER_TOKENS_SINCE = TOKENS_SINCE.where(usage_rows.c.user_id == sa.bindparam("user_id"))
# RETURNING the new row's id: None when a concurrent first message inserted it first.
_INSERT_ONCE = {
    (name, table.name): insert_once(name, table).returning(table.c.id)
    for name in ("sqlite", "postgresql")
    for table in (users, conversations)
}
_INSERT_MESSAGE = {name: insert_once(name, messages).returning(messages.c.id) for name in ("sqlite", "postgresql")}


def state_of(row: Mapping[str, Any], brand: str) -> ConversationState:
    """The conversation a row (FIND_USER's or FIND_CONVERSATION's columns, by name) describes."""
    state = _state_of(row, brand)
    state._as_loaded = _snapshot(_columns(state))
    return state


def _snapshot(columns: dict[str, Any]) -> dict[str, Any]:
    """The columns as they are now: the profile's dump is a fresh dict already, the flow is mutated in
    place by the policy, so only it is copied (a whole deepcopy costs a turn ~0.1 ms more)."""
    return {**columns, "state": copy.deepcopy(columns["state"])}


def _state_of(row: Mapping[str, Any], brand: str) -> ConversationState:
    return ConversationState(
        conversation_id=row["conversation_id"],
        user_id=row["id"],
        brand=brand,
        identity=row["identity"],
        external_id=row["external_id"],
        first_name=row["first_name"],
        username=row["username"],
        source=row["source"],
        profile=Profile.model_validate(row["profile"] or {}),
        flow=dict(row["state"] or {}),
        human_mode_until=row["human_mode_until"],
        handoff_reason=row["handoff_reason"],
        handoff_notice_sent=bool(row["handoff_notice_sent"]),
    )


def open_turn(
    conn: sa.Connection,
    identity: str,
    external_id: str,
    brand: str,
    message: NewMessage | None,
    *,
    first_name: str | None,
    username: str | None,
    source: str | None,
    now: datetime,
    context_messages: int = 0,
) -> TurnStart:
    """The reply already stored for the message's key, or the user's conversation with the message stored
    (the user and the conversation are created on first contact), with ``context_messages`` of its
    latest messages and its consent preloaded when that is > 0.

    Statements: a returning user's turn reads the user, the conversation, the stored reply and the
    consent in one SELECT; a first contact's inserts return the new ids, and the rows are taken from
    what was inserted, not read back (a read only when a concurrent first message won the insert)."""
    first_name, username = plain_name(first_name), plain_name(username)
    key = message.idempotency_key if message is not None else None
    find = {"identity": identity, "external_id": external_id, "brand": brand,
            "reply_key": key + REPLY_KEY_SUFFIX if key else None}
    dialect = conn.dialect.name
    found = conn.execute(FIND_USER, find).first()
    if found is not None and found.reply_content is not None:
        meta = found.reply_meta or {}
        return TurnStart(stored_reply=dict(meta.get("reply") or {"text": found.reply_content}))
    row: dict[str, Any]
    if found is None:
        values = {"identity": identity, "external_id": external_id, "first_name": first_name,
                  "username": username, "source": source, "created_at": now}
        user_id = conn.execute(_INSERT_ONCE[(dialect, "users")], values).scalar()
        if user_id is None:  # a concurrent first message of the same user (another brand, another process)
            row = dict(conn.execute(FIND_USER, find).one()._mapping)
        else:
            row = {**values, "id": user_id, "conversation_id": None, "consent_granted": None}
    else:
        row = dict(found._mapping)
        changes: dict[str, Any] = {}
        if source and not row["source"]:
            changes["source"] = source  # the first-touch source is set once, never overwritten
        if first_name and row["first_name"] != first_name:
            changes["first_name"] = first_name
        if username and row["username"] != username:
            changes["username"] = username
        if changes:
            conn.execute(UPDATE_USER, {"user_id": row["id"], **changes})
            row.update(changes)
    created = row["conversation_id"] is None
    if created:
        values = {"user_id": row["id"], "brand": brand, "profile": {}, "state": {}, "handoff_notice_sent": False,
                  "created_at": now, "updated_at": now}
        conversation_id = conn.execute(_INSERT_ONCE[(dialect, "conversations")], values).scalar()
        if conversation_id is None:  # a concurrent first message with the same brand
            row = dict(conn.execute(FIND_USER, find).one()._mapping)
            created = False
        else:
            row.update(values, conversation_id=conversation_id, human_mode_until=None, handoff_reason=None)
    state = state_of(row, brand)
    stored = message is not None and insert_message(conn, state.conversation_id, "user", message, now)
    if stored:
        update_conversation(conn, state.conversation_id, {"last_message_at": now})
    if context_messages > 0:
        if not created:
            transcript = recent_messages(conn, state.conversation_id, context_messages)
        elif stored and message is not None:  # a conversation created here holds only this message
            transcript = [StoredMessage(role="user", content=message.content, meta=message.meta or {})]
        else:
            transcript = []
        state.preload(transcript, bool(row["consent_granted"]))
    return TurnStart(state=state)


def finish_turn(
    conn: sa.Connection, state: ConversationState, reply: NewMessage, usage: list[UsageRecord], now: datetime
) -> None:
    """Store the reply, the conversation's state and the turn's model usage."""
    values = state_values(state, now)
    if insert_message(conn, state.conversation_id, "assistant", reply, now):
        values["last_message_at"] = now
    update_conversation(conn, state.conversation_id, values)
    if usage:
        insert_usage(conn, usage, now)


def insert_message(conn: sa.Connection, conversation_id: int, role: str, message: NewMessage, now: datetime) -> bool:
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
    return conn.execute(_INSERT_MESSAGE[conn.dialect.name], values).first() is not None


def _columns(state: ConversationState) -> dict[str, Any]:
    return {
        "profile": state.profile.model_dump(exclude_none=True),
        "state": state.flow,
        "human_mode_until": state.human_mode_until,
        "handoff_reason": state.handoff_reason,
        "handoff_notice_sent": state.handoff_notice_sent,
    }


def state_values(state: ConversationState, now: datetime) -> dict[str, Any]:
    """The conversation's columns this state changed since it was loaded (all of them for a state the
    store did not load); remembered as stored, for a later save of the same state."""
    current = _columns(state)
    loaded = state._as_loaded
    changed = {k: v for k, v in current.items() if loaded is None or loaded.get(k) != v}
    state._as_loaded = _snapshot(current)
    return {**changed, "updated_at": now}


def update_conversation(conn: sa.Connection, conversation_id: int, values: dict[str, Any]) -> None:
    conn.execute(UPDATE_CONVERSATION, {"conversation_id": conversation_id, **values})


def insert_usage(conn: sa.Connection, records: list[UsageRecord], now: datetime) -> None:
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
    conn.execute(INSERT_USAGE, rows)


def recent_messages(conn: sa.Connection, conversation_id: int, limit: int) -> list[StoredMessage]:
    rows = conn.execute(RECENT_MESSAGES, {"conversation_id": conversation_id, "limit": limit}).all()
    return [StoredMessage(role=r.role, content=r.content, meta=r.meta or {}) for r in reversed(rows)]


def load_by_id(conn: sa.Connection, conversation_id: int) -> ConversationState | None:
    row = conn.execute(FIND_CONVERSATION, {"conversation_id": conversation_id}).first()
    return state_of(row._mapping, row.brand) if row is not None else None


def tokens_since(conn: sa.Connection, since: datetime, user_id: int | None) -> int:
    query, params = (TOKENS_SINCE, {"since": since}) if user_id is None else (
        USER_TOKENS_SINCE, {"since": since, "user_id": user_id})
    return int(conn.execute(query, params).scalar_one())


def consent_granted(conn: sa.Connection, user_id: int, kind: str) -> bool:
    return bool(conn.execute(LATEST_CONSENT, {"user_id": user_id, "kind": kind}).scalar())
