"""The composition root: the one place that knows every concrete class.

The FastAPI app factory, the bot entry point and the scripts call ``build_runtime(settings)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import httpx

from adapters.crm.checks import crm_connection
from adapters.crm.factory import NoCRM, build_crm
from adapters.crm.http import make_http_client
from adapters.crm.outbox import OutboxWorker
from adapters.knowledge.backend import KnowledgeBackend, build_knowledge
from adapters.knowledge.local import LocalKnowledge
from adapters.miniapp_checks import miniapp_checks
from adapters.preflight import EXTRA_CHECKS
from adapters.storage.database import Database, database_url_for
from adapters.storage.models import ModelUsage, utcnow
from adapters.storage.outbox import OutboxRepository
from adapters.storage.repositories import (
    ConsentRepository,
    ConversationRepository,
    LeadRepository,
    MessageRepository,
    UsageRepository,
    UserRepository,
)
from agent import __version__
from agent.catalog import Catalog, read_catalog, school_today
from agent.paths import DataPaths, resolve_data_paths
from agent.ports import CRM, Assistant, Notifier
from agent.settings import CrmProvider, Settings

log = logging.getLogger(__name__)

EXTRA_CHECKS.append(crm_connection)
EXTRA_CHECKS.append(miniapp_checks)


class BackgroundService(Protocol):
    """Something that runs beside the HTTP server (queue workers, the polling loop, the CRM outbox)."""

    name: str

    async def run(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    paths: DataPaths
    db: Database
    users: UserRepository
    conversations: ConversationRepository
    messages: MessageRepository
    leads: LeadRepository
    consents: ConsentRepository
    usage: UsageRepository
    outbox: OutboxRepository
    crm: CRM = field(default_factory=NoCRM)
    crm_http: httpx.AsyncClient | None = None  # shared by the CRM adapters; closed with the runtime
    run_bot: bool = False
    version: str = __version__
    started_at: datetime = field(default_factory=utcnow)
    # "Now" for checks that compare against signed times (Mini App initData); tests pin it.
    clock: Callable[[], datetime] = utcnow
    # Provided by the agent core and the Telegram adapter; while absent, the routes that need them
    # answer 503 (release, POST /api/leads) or skip the courtesy message (notifier).
    assistant: Assistant | None = None
    notifier: Notifier | None = None
    lead_service: Any = None  # adapters.http.routers.leads.LeadIntake
    background: list[BackgroundService] = field(default_factory=list)
    preflight: object | None = None  # the last adapters.preflight.Report
    catalog: Catalog = field(default_factory=lambda: Catalog({}))
    knowledge: KnowledgeBackend = field(default_factory=lambda: LocalKnowledge({}))
    # "Today" for session dates (Moscow time); tests replace it to pin the calendar.
    today: Callable[[], date] = school_today
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
        if self.crm_http is not None:
            await self.crm_http.aclose()
        await self.db.dispose()


def build_runtime(settings: Settings, *, paths: DataPaths | None = None, run_bot: bool = False) -> Runtime:
    """Build every component. ``run_bot``: this process also runs the Telegram polling bot."""
    paths = paths or resolve_data_paths(settings)
    db = Database(database_url_for(settings, paths))
    real_crm = settings.crm_provider is not CrmProvider.none
    crm_http = make_http_client(settings.crm_timeout_seconds) if real_crm else None
    runtime = Runtime(
        settings=settings,
        paths=paths,
        db=db,
        users=UserRepository(db),
        conversations=ConversationRepository(db),
        messages=MessageRepository(db),
        leads=LeadRepository(db),
        consents=ConsentRepository(db),
        usage=UsageRepository(db),
        crm=build_crm(settings, crm_http),
        outbox=OutboxRepository(db),
        crm_http=crm_http,
        run_bot=run_bot,
    )
    if real_crm:
        # `none` creates no outbox rows (LeadRepository.create(..., outbox_provider=None)), so no worker.
        runtime.background.append(
            OutboxWorker(runtime.crm, runtime.outbox, runtime.leads, runtime.messages)
        )

    # Brand files with errors are left out here; preflight reports them (and blocks start-up unless off).
    runtime.catalog, _ = read_catalog(settings.catalog_path)

    async def record_vector_search(purpose: str) -> None:
        await runtime.usage.add(ModelUsage(model="vector_store", purpose=purpose))

    runtime.knowledge = build_knowledge(settings, usage_recorder=record_vector_search)
    return runtime
