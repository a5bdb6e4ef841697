"""The running service's parts, as adapters/wiring.py built them.

Only entry points (adapters/main.py, the app factory's lifespan, scripts, evals, bench, test fixtures)
hold a Runtime; handlers receive the narrow pieces they use (HTTP: adapters/http/dependencies.py;
Telegram: aiogram workflow data, adapters/telegram/turns.py's TelegramContext; preflight:
PreflightInputs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from adapters.crm.leadtest import LeadTest
from adapters.http.ratelimit import AssistantLimits, RateLimiter
from adapters.knowledge.backend import KnowledgeBackend
from adapters.preflight import PreflightInputs, Report
from adapters.storage.admin_queries import AdminQueries
from adapters.storage.database import Database
from adapters.storage.models import utcnow
from adapters.storage.repositories import Repositories
from adapters.storage.stores import SqlStore
from agent import __version__
from agent.catalog import Catalog
from agent.leads import LeadService
from agent.paths import DataPaths
from agent.ports import CRM, Assistant, Notifier
from agent.settings import Settings

if TYPE_CHECKING:
    import httpx

    from adapters.deferred_sdks import DeferredTelegram
    from adapters.telegram.service import TelegramService
    from agent.llm import LLM

log = logging.getLogger(__name__)


class BackgroundService(Protocol):
    """Something that runs beside the HTTP server (queue workers, the polling loop, the CRM outbox)."""

    name: str

    async def run(self) -> None: ...


@dataclass
class Runtime(Repositories):
    """The repositories (``users``, ``leads``, ...: Repositories' fields) and everything built on them."""

    settings: Settings
    paths: DataPaths
    db: Database
    store: SqlStore
    crm: CRM
    crm_http: httpx.AsyncClient | None  # shared by the CRM adapters; closed with the runtime
    catalog: Catalog
    knowledge: KnowledgeBackend
    notifier: Notifier
    lead_service: LeadService
    llm: LLM | None  # None without OPENAI_API_KEY: the offline policy answers
    assistant: Assistant
    assistant_limits: AssistantLimits
    crm_api_limiter: RateLimiter  # the read-only CRM API's per-IP limit
    admin_queries: AdminQueries
    lead_test: LeadTest
    # Set when TELEGRAM_BOT_TOKEN is configured (and valid); `serve` holds a DeferredTelegram until aiogram loads.
    telegram: TelegramService | DeferredTelegram | None
    preflight_inputs: PreflightInputs
    # "Now" for checks that compare against signed times (Mini App initData); tests pin it.
    clock: Callable[[], datetime]
    # "Today" for session dates (Moscow time); tests pin the calendar.
    today: Callable[[], date]
    version: str = __version__
    started_at: datetime = field(default_factory=utcnow)
    run_bot: bool = False
    background: list[BackgroundService] = field(default_factory=list)
    preflight: Report | None = None  # the last start-up report (GET /api/runtime/diagnostics shows it)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start_background(self) -> None:
        for service in self.background:
            log.info("starting %s", service.name)
            self._tasks.append(asyncio.create_task(service.run(), name=service.name))

    async def stop_background(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("%s stopped with an error", task.get_name())
        self._tasks.clear()

    async def close(self) -> None:
        await self.stop_background()
        if self.telegram is not None:
            await self.telegram.close()
        if self.llm is not None:
            await self.llm.aclose()
        if self.crm_http is not None:
            await self.crm_http.aclose()
        await self.store.tokens.aclose()
        await self.store.turn_locks.close()
        await self.db.dispose()
