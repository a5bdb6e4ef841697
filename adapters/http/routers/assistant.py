"""POST /api/assistant/ask: the assistant over HTTP, for integrations (Bearer token) and the Mini App.

Auth: ``Authorization: Bearer <ASSISTANT_API_TOKEN>`` (constant-time; a blank setting disables the
token route) or Mini App initData (``Authorization: tma <initData>`` or ``X-Tg-Init-Data``, verified by
adapters/http/miniapp_auth.py).
Limits: ASSISTANT_RATE_LIMIT_USER_REQUESTS per user and ASSISTANT_RATE_LIMIT_IP_REQUESTS per client IP
within ASSISTANT_RATE_LIMIT_WINDOW_SECONDS; over the limit: 429 with Retry-After.
Streaming: with ``Accept: text/event-stream`` or ``"stream": true`` the answer comes as Server-Sent
Events ending with the same reply object (adapters/http/sse.py); checks and limits answer as before.
Retries: ``idempotency_key`` is the caller's own id for a message; sending it again (after a dropped
stream, a timeout) returns the reply stored for it, without a second turn or a second stored message.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field, model_validator

from adapters.http.auth import client_ip
from adapters.http.dependencies import (
    AssistantDep,
    AssistantLimitsDep,
    CatalogDep,
    DatabaseDep,
    NowDep,
    RelayDep,
    SettingsDep,
)
from adapters.http.miniapp_auth import TelegramUserDep, optional_init_data
from adapters.http.sse import event_stream, wants_stream
from adapters.storage.history import recent_history
from adapters.storage.relay import RelayRepository
from agent.errors import UnknownBrand
from agent.relay import ManagerMessage
from agent.settings import Settings
from agent.types import Action, Channel, Identity, Inbound, ProgramCard, QuickReply, Reply

router = APIRouter()
# Longer messages are accepted and cut to 4000 characters with a note (agent/guardrails.py).
MAX_MESSAGE_CHARS = 20_000


class AskRequest(BaseModel):
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    user_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")
    brand: str | None = Field(default=None, max_length=32)
    # A quick-reply payload the user pressed (see agent/service.py for the reserved ones).
    choice: str | None = Field(default=None, max_length=64)
    # Answer as Server-Sent Events (same as sending Accept: text/event-stream).
    stream: bool = False
    # The caller's own id for this message: a retry with the same id gets the stored reply (no second turn).
    idempotency_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{8,64}$")

    @model_validator(mode="after")
    def _something_to_answer(self) -> AskRequest:
        if not (self.message and self.message.strip()) and not self.choice:
            raise ValueError("message must not be empty")
        return self


class AskResponse(BaseModel):
    ok: bool = True
    text: str
    quick_replies: list[QuickReply]
    cards: list[ProgramCard]
    actions: list[Action]
    conversation_id: int | None
    lead_id: int | None
    silent: bool
    engine: str
    # What managers wrote since the client's last request (role "manager"), oldest first: a client
    # outside Telegram receives the manager relay's answers here.
    manager_messages: list[ManagerMessage] = []


@dataclass(frozen=True)
class Caller:
    channel: Channel
    user_id: str | None  # known from auth for the Mini App; from the body for token callers
    first_name: str | None = None
    username: str | None = None


def _unauthorized(reason: str = "unauthorized") -> HTTPException:
    return HTTPException(401, {"reason": reason}, headers={"WWW-Authenticate": 'Bearer realm="assistant"'})


async def assistant_caller(request: Request, settings: SettingsDep, limits: AssistantLimitsDep, now: NowDep) -> Caller:
    """Who is asking, under the IP limits: a request that fails authentication counts against
    ASSISTANT_RATE_LIMIT_AUTH_FAILURES, an authenticated one against ASSISTANT_RATE_LIMIT_IP_REQUESTS.
    Junk from one address (or from everyone behind one proxy) then can't use up the real users' budget,
    and guessing tokens is still throttled."""
    ip = client_ip(request, settings.trusted_proxy_ips)
    try:
        caller = await _authenticate(request, settings, now)
    except HTTPException as refused:
        if refused.status_code == 401:
            decision = await limits.auth_failures.hit(ip)
            if not decision.allowed:
                raise _too_many(decision.retry_after) from None
        raise
    decision = await limits.per_ip.hit(ip)
    if not decision.allowed:
        raise _too_many(decision.retry_after)
    return caller


async def _authenticate(request: Request, settings: Settings, now: datetime) -> Caller:
    scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        if _token_matches(credentials, settings):
            return Caller(channel=Channel.api, user_id=None)
        raise _unauthorized()
    # Forged or expired initData is refused here (401 invalid_init_data / expired).
    init_data = await optional_init_data(request, settings, now)
    if init_data is not None and init_data.user is not None:
        user = init_data.user
        return Caller(channel=Channel.miniapp, user_id=str(user.id), first_name=user.first_name, username=user.username)
    raise _unauthorized()


def _token_matches(given: str, settings: Settings) -> bool:
    expected = settings.assistant_api_token.get_secret_value() if settings.assistant_api_token else ""
    if not expected:
        return False  # a blank ASSISTANT_API_TOKEN disables the token route
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


CallerDep = Annotated[Caller, Depends(assistant_caller)]


def _too_many(retry_after: int) -> HTTPException:
    return HTTPException(429, {"reason": "rate_limited", "retry_after": retry_after}, headers={"Retry-After": str(retry_after)})


@router.post("/api/assistant/ask", response_model=AskResponse)
async def ask(
    body: AskRequest,
    caller: CallerDep,
    assistant: AssistantDep,
    limits: AssistantLimitsDep,
    relay: RelayDep,
    db: DatabaseDep,
    request: Request,
) -> AskResponse | Response:
    user_id = caller.user_id or body.user_id
    if not user_id:
        raise HTTPException(422, {"reason": "invalid_request", "field": "user_id", "detail": "user_id is required"})
    user_decision = await limits.per_user.hit(f"{caller.channel.value}:{user_id}")
    if not user_decision.allowed:
        raise _too_many(user_decision.retry_after)
    inbound = Inbound(channel=caller.channel, user_id=user_id, brand=body.brand, text=body.message, choice=body.choice,
                      idempotency_key=_turn_key(caller.channel, user_id, body.idempotency_key))
    # The Mini App's initData names the user: keep their display name like the bot does.
    named = inbound.model_copy(update={"first_name": caller.first_name, "username": caller.username})

    async def answer() -> AskResponse:
        reply = await assistant.handle(named)
        manager_messages: list[ManagerMessage] = []
        if reply.conversation_id is not None:
            if reply.human_mode and relay is not None:
                await relay.queue_api_client_message(
                    reply.conversation_id, body.message or body.choice or "", source_key=inbound.idempotency_key
                )
            waiting = await RelayRepository(db).take_waiting(reply.conversation_id, inbound.idempotency_key)
            manager_messages = [
                ManagerMessage(text=m.content, manager_name=m.meta.get("manager_name"), created_at=m.created_at) for m in waiting
            ]
        return AskResponse(**reply.model_dump(exclude={"usage", "human_mode"}), manager_messages=manager_messages)

    if wants_stream(request, body.stream):
        return event_stream(answer)
    return await answer()


def _turn_key(channel: Channel, user_id: str, key: str | None) -> str | None:
    """The stored message's key: the caller's key scoped to the caller (keys are unique across all
    users, so another user's equal key must neither replay this reply nor be refused), hashed to fit."""
    if key is None:
        return None
    scoped = hashlib.sha256(f"{channel.value}\0{user_id}\0{key}".encode()).hexdigest()[:40]
    return f"ask:{scoped}"


HISTORY_LIMIT = 40


class HistoryMessage(BaseModel):
    role: str  # user | assistant | manager (a manager's own words, when the relay stores them)
    text: str
    cards: list[ProgramCard] = Field(default_factory=list)
    quick_replies: list[QuickReply] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    created_at: str


class HistoryResponse(BaseModel):
    ok: bool = True
    messages: list[HistoryMessage]


@router.get("/api/assistant/history", response_model=HistoryResponse)
async def history(
    user: TelegramUserDep, settings: SettingsDep, catalog: CatalogDep, db: DatabaseDep, brand: str | None = None
) -> HistoryResponse:
    """The Mini App chat's earlier messages (the bot chat's too: one conversation per Telegram user and
    brand), so a reopened app continues where the server does. Silent turns are left out."""
    chosen = (brand or settings.brand_default).strip()
    if chosen not in catalog.brand_ids():
        raise UnknownBrand(chosen)
    rows = await recent_history(db, Identity.telegram.value, str(user.id), chosen, limit=HISTORY_LIMIT)
    messages = []
    for row in rows:
        reply = (row.meta or {}).get("reply") if row.role == "assistant" else None
        stored = Reply.model_validate(reply) if isinstance(reply, dict) else None
        if (stored is not None and stored.silent) or not row.content.strip():
            continue
        messages.append(HistoryMessage(
            role=row.role,
            text=row.content,
            cards=stored.cards if stored else [],
            quick_replies=stored.quick_replies if stored else [],
            actions=stored.actions if stored else [],
            created_at=row.created_at.isoformat(),
        ))
    return HistoryResponse(messages=messages)
