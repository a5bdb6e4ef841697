"""FastAPI dependencies: each route asks for the narrow piece it uses (full-stack-fastapi-template's
``SessionDep`` style), never the whole runtime.

The app factory's lifespan keeps the runtime that adapters/wiring.py built in ``app.state.runtime``;
this module is the one place in the HTTP layer that reads it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from adapters.http.ratelimit import AssistantLimits, RateLimiter
from adapters.knowledge.backend import KnowledgeBackend
from adapters.storage.admin_queries import AdminQueries
from adapters.storage.database import Database
from agent.catalog import Catalog
from agent.leads import LeadService
from agent.ports import CRM, Assistant, Notifier
from agent.relay import Author, Delivery
from agent.settings import Settings


class Relay(Protocol):
    """What the HTTP layer asks of the Telegram staff relay (adapters/telegram/relay/staff.py). A
    protocol, so the HTTP layer does not import aiogram where no bot is configured."""

    # Each queues its Telegram sends (a job of the durable update queue): no HTTP request calls the Bot API.
    async def queue_api_client_message(self, conversation_id: int, text: str, source_key: str | None = None) -> None: ...

    async def answer_from_admin(self, conversation_id: int, text: str, author: Author, *, key: str) -> Delivery: ...

    async def release_from_admin(self, conversation_id: int, *, by: str) -> None: ...


def _parts(request: Request) -> Any:
    return request.app.state.runtime


def get_settings(request: Request) -> Settings:
    return _parts(request).settings


def get_assistant(request: Request) -> Assistant:
    return _parts(request).assistant


def get_lead_service(request: Request) -> LeadService:
    return _parts(request).lead_service


def get_admin_queries(request: Request) -> AdminQueries:
    return _parts(request).admin_queries


def get_database(request: Request) -> Database:
    return _parts(request).db


def get_catalog(request: Request) -> Catalog:
    return _parts(request).catalog


def get_knowledge(request: Request) -> KnowledgeBackend:
    return _parts(request).knowledge


def get_notifier(request: Request) -> Notifier:
    return _parts(request).notifier


def get_crm(request: Request) -> CRM:
    return _parts(request).crm


def get_assistant_limits(request: Request) -> AssistantLimits:
    return _parts(request).assistant_limits


def get_crm_api_limiter(request: Request) -> RateLimiter:
    return _parts(request).crm_api_limiter


def get_now(request: Request) -> datetime:
    """"Now" for signed times and human-mode deadlines (tests pin the runtime's clock)."""
    return _parts(request).clock()


def get_today(request: Request) -> date:
    """The school's calendar day (Moscow time) for session dates."""
    return _parts(request).today()


async def get_relay(request: Request) -> Relay | None:
    """The Telegram staff relay, or None without a bot, MANAGER_CHAT_ID or MANAGER_RELAY_ENABLED
    (right after start-up it waits for the bot: adapters/deferred_sdks.py)."""
    telegram = _parts(request).telegram
    return await telegram.current_relay() if telegram is not None else None


def get_bot_username(request: Request) -> str | None:
    telegram = _parts(request).telegram
    return telegram.bot_username if telegram is not None else None


SettingsDep = Annotated[Settings, Depends(get_settings)]
AssistantDep = Annotated[Assistant, Depends(get_assistant)]
LeadServiceDep = Annotated[LeadService, Depends(get_lead_service)]
AdminQueriesDep = Annotated[AdminQueries, Depends(get_admin_queries)]
DatabaseDep = Annotated[Database, Depends(get_database)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
KnowledgeDep = Annotated[KnowledgeBackend, Depends(get_knowledge)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
CrmDep = Annotated[CRM, Depends(get_crm)]
AssistantLimitsDep = Annotated[AssistantLimits, Depends(get_assistant_limits)]
CrmApiLimiterDep = Annotated[RateLimiter, Depends(get_crm_api_limiter)]
NowDep = Annotated[datetime, Depends(get_now)]
TodayDep = Annotated[date, Depends(get_today)]
RelayDep = Annotated[Relay | None, Depends(get_relay)]
BotUsernameDep = Annotated[str | None, Depends(get_bot_username)]
