"""Admin API over conversations (list, transcript, ending human mode), dead Telegram updates and the funnel."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from adapters.http.dependencies import (
    AdminQueriesDep,
    AssistantDep,
    CatalogDep,
    DatabaseDep,
    NowDep,
    Relay,
    RelayDep,
    SettingsDep,
)
from adapters.http.miniapp_auth import AdminAccessDep, AdminIdentityDep
from adapters.http.routers.admin_leads import FIRST_DAY, LAST_DAY, RowId
from adapters.storage.funnel import compute_funnel
from adapters.storage.models import Conversation, Message, User
from agent.catalog import Catalog
from agent.turn_meta import read_turn_meta
from adapters.storage.relay import RelayRepository
from agent.errors import NotFound
from agent.relay import Author, human_mode_deadline

log = logging.getLogger(__name__)
router = APIRouter(tags=["admin"])

PREVIEW_CHARS = 200
PAYLOAD_CHARS = 4000
TRANSCRIPT_LIMIT = 500
FUNNEL_DEFAULT_DAYS = 30
FUNNEL_MAX_DAYS = 366


def _user_json(user: User | None) -> dict[str, object] | None:
    if user is None:
        return None
    return {
        "id": user.id,
        "identity": user.identity,
        "external_id": user.external_id,
        "first_name": user.first_name,
        "username": user.username,
        "source": user.source,
    }


def _conversation_json(conversation: Conversation, user: User | None, in_human_mode: bool) -> dict[str, object]:
    return {
        "id": conversation.id,
        "brand": conversation.brand,
        "user": _user_json(user),
        "profile": conversation.profile,
        "in_human_mode": in_human_mode,
        "human_mode_until": conversation.human_mode_until.isoformat() if conversation.human_mode_until else None,
        "handoff_reason": conversation.handoff_reason,
        "created_at": conversation.created_at.isoformat(),
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
    }


def _message_json(message: Message, catalog: Catalog, brand: str) -> dict[str, object]:
    turn = read_turn_meta(message.meta)  # the one shape the service writes (agent/turn_meta.py)
    cards = []
    for program_id in turn.cards:
        program = catalog.program(brand, program_id)
        cards.append({"id": program_id, "title": program.title if program else program_id})
    return {
        "id": message.id,
        "role": message.role,
        "channel": message.channel,
        "content": message.content,
        "engine": turn.engine,
        "cards": cards,
        "tool_calls": turn.tool_calls,
        "meta": message.meta,  # as stored: a manager message's manager_name, manager_id, delivery
        "created_at": message.created_at.isoformat(),
    }


@router.get("/admin/conversations")
async def list_conversations(
    _: AdminAccessDep,
    queries: AdminQueriesDep,
    now: NowDep,
    handoff: Annotated[bool, Query(description="only conversations in human mode")] = False,
    brand: Annotated[str | None, Query(max_length=32)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, object]:
    rows, total = await queries.conversations(
        now=now, offset=(page - 1) * per_page, limit=per_page, handoff_only=handoff, brand=brand or None
    )
    items = []
    for row in rows:
        item = _conversation_json(row.conversation, row.user, row.in_human_mode)
        last = row.last_message
        item["last_message"] = (
            {"role": last.role, "text": last.content[:PREVIEW_CHARS], "created_at": last.created_at.isoformat()}
            if last
            else None
        )
        items.append(item)
    return {"ok": True, "items": items, "total": total, "page": page, "per_page": per_page}


@router.get("/admin/conversations/{conversation_id}")
async def conversation_transcript(
    conversation_id: RowId,
    _: AdminAccessDep,
    queries: AdminQueriesDep,
    catalog: CatalogDep,
    db: DatabaseDep,
    relay: RelayDep,
    now: NowDep,
) -> dict[str, object]:
    found = await queries.transcript(conversation_id, limit=TRANSCRIPT_LIMIT)
    if found is None:
        raise HTTPException(404, {"reason": "not_found", "detail": f"conversation {conversation_id}"})
    conversation, user, messages = found
    in_human_mode = conversation.human_mode_until is not None and conversation.human_mode_until > now
    return {
        "ok": True,
        "conversation": _conversation_json(conversation, user, in_human_mode),
        "messages": [_message_json(m, catalog, conversation.brand) for m in messages],
        "answer": await _can_answer(RelayRepository(db), relay, conversation_id, in_human_mode),
    }


async def _can_answer(
    repo: RelayRepository, relay: Relay | None, conversation_id: int, in_human_mode: bool
) -> dict[str, object]:
    """Whether an admin can answer the client from the admin app now, and if not, why (a code the app
    words for the manager): the bot has the conversation, the client blocked the bot, or the client is
    in Telegram while the relay that would carry the answer there is off."""
    reason: str | None = None
    client = await repo.client(conversation_id)
    if not in_human_mode:
        reason = "not_in_human_mode"
    elif client is None:
        reason = "client_unknown"
    elif client.blocked:
        reason = "client_blocked"
    elif client.telegram_chat_id is not None and relay is None:
        reason = "relay_unavailable"
    return {"allowed": reason is None, "reason": reason}


@router.post("/admin/conversations/{conversation_id}/release")
async def release_conversation(
    conversation_id: RowId, who: AdminAccessDep, assistant: AssistantDep, relay: RelayDep
) -> dict[str, object]:
    """End human mode: the assistant answers this user again (with the relay on, the client is told
    and the topic says so, as with /release)."""
    if relay is not None:
        await relay.release_from_admin(conversation_id, by=f"администратор {who}")  # NotFound → 404
    else:
        await assistant.release(conversation_id)  # NotFound → 404
    log.info("conversation %s released to the assistant by %s", conversation_id, who)
    return {"ok": True, "conversation_id": conversation_id, "in_human_mode": False}


class ManagerAnswer(BaseModel):
    text: str = Field(min_length=1, max_length=4000, description="what the client receives")
    idempotency_key: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.:-]{8,64}$",
        description="the admin app's own id for this answer: a repeated request (double click, retry) sends it once",
    )


@router.post("/admin/conversations/{conversation_id}/messages")
async def answer_client(
    conversation_id: RowId,
    body: ManagerAnswer,
    admin: AdminIdentityDep,
    relay: RelayDep,
    db: DatabaseDep,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, object]:
    """Answer the client as a manager: delivered like a message in the client's topic (copied to their
    Telegram chat, or carried by their next assistant reply outside Telegram), stored as role manager."""
    text = body.text.strip()
    if not text:
        raise HTTPException(422, {"reason": "invalid_request", "field": "text", "detail": "text must not be blank"})
    # Who answers is who logged in (a body may still carry the old «name» field: it is ignored).
    author = Author(name=admin.name, telegram_id=admin.telegram_id, via="admin")
    # Without the app's key every request is an answer of its own.
    key = f"admin:{conversation_id}:{body.idempotency_key}" if body.idempotency_key else f"admin-once:{conversation_id}:{uuid.uuid4().hex}"
    if relay is not None:
        delivery = await relay.answer_from_admin(conversation_id, text, author, key=key)  # NotFound → 404
    else:
        repo = RelayRepository(db)
        until = human_mode_deadline(now, settings.handoff_idle_hours)
        delivery = await _store_for_next_reply(repo, conversation_id, text, author, key, now=now, until=until)
    log.info("conversation %s answered from the admin API by %s (%s)", conversation_id, admin.who, delivery)
    return {"ok": True, "conversation_id": conversation_id, "delivery": delivery}


async def _store_for_next_reply(
    repo: RelayRepository, conversation_id: int, text: str, author: Author, key: str, *, now: datetime,
    until: datetime,
) -> str:
    """Without the Telegram relay only clients outside Telegram can be answered: their next reply carries it."""
    client = await repo.client(conversation_id)
    if client is None:
        raise NotFound(f"conversation {conversation_id}")
    if client.telegram_chat_id is not None:
        raise HTTPException(503, {"reason": "relay_unavailable", "detail": "the client is in Telegram: set TELEGRAM_BOT_TOKEN, MANAGER_CHAT_ID and MANAGER_RELAY_ENABLED"})
    meta = {"manager_id": author.telegram_id, "manager_name": author.name, "via": "admin", "delivery": "waiting"}
    stored, _ = await repo.add_manager_message(
        conversation_id, key, text, meta, human_mode_until=until
    )
    return str((stored.meta or {}).get("delivery", "waiting"))  # a repeat tells what became of the first


@router.get("/admin/telegram/dead-updates")
async def dead_updates(
    _: AdminAccessDep,
    queries: AdminQueriesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, object]:
    """Telegram updates that failed every retry (status "dead"), newest first, for a manager to follow up."""
    rows, total = await queries.dead_updates(offset=(page - 1) * per_page, limit=per_page)
    items = [
        {
            "id": row.id,
            "update_id": row.update_id,
            "chat_id": row.chat_id,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "payload": row.payload[:PAYLOAD_CHARS],
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        }
        for row in rows
    ]
    return {"ok": True, "items": items, "total": total, "page": page, "per_page": per_page}


@router.get("/admin/funnel")
async def funnel(
    _: AdminAccessDep,
    db: DatabaseDep,
    now: NowDep,
    date_from: Annotated[
        date | None, Query(ge=FIRST_DAY, le=LAST_DAY, description="first day, inclusive (UTC); default 30 days ago")
    ] = None,
    date_to: Annotated[
        date | None, Query(ge=FIRST_DAY, le=LAST_DAY, description="last day, inclusive (UTC); default today")
    ] = None,
    brand: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, object]:
    last = date_to or now.date()
    first = date_from or last - timedelta(days=FUNNEL_DEFAULT_DAYS - 1)
    if first > last or (last - first).days >= FUNNEL_MAX_DAYS:
        detail = f"date_from must be on or before date_to, at most {FUNNEL_MAX_DAYS} days apart"
        raise HTTPException(422, {"reason": "invalid_request", "field": "date_from", "detail": detail})
    since = datetime.combine(first, time(), UTC)
    until = datetime.combine(last + timedelta(days=1), time(), UTC)
    result = await compute_funnel(db, since=since, until=until, brand=brand or None)
    return {"ok": True, "date_from": first.isoformat(), "date_to": last.isoformat(), **result}
