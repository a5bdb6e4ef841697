"""The composition root: the one place that knows every concrete class.

The FastAPI app factory, the bot entry point and the scripts call ``build_runtime(settings)``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

import httpx

from adapters.crm.checks import crm_connection
from adapters.crm.factory import NoCRM, build_crm
from adapters.crm.http import make_http_client
from adapters.crm.outbox import OutboxWorker
from adapters.http.ratelimit import RateLimiter, make_storage
from adapters.knowledge.backend import KnowledgeBackend, build_knowledge
from adapters.knowledge.local import LocalKnowledge
from adapters.miniapp_checks import miniapp_checks
from adapters.notify import LoggingNotifier
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
from adapters.storage.stores import SqlStore
from agent import __version__
from agent.catalog import Catalog, read_catalog, school_today
from agent.leads import LeadService
from agent.model_turn import ModelTurn
from agent.ports import CRM, Notifier
from agent.prompting import load_prompts
from agent.service import AssistantService
from agent.paths import DataPaths, resolve_data_paths
from agent.settings import CrmProvider, Settings
from tools.registry import build_tools, tool_schemas

if TYPE_CHECKING:
    from adapters.telegram.service import TelegramService
    from agent.llm import LLM

log = logging.getLogger(__name__)

EXTRA_CHECKS.append(crm_connection)
EXTRA_CHECKS.append(miniapp_checks)


class BackgroundService(Protocol):
    """Something that runs beside the HTTP server (queue workers, the polling loop, the CRM outbox)."""

    name: str

    async def run(self) -> None: ...


@dataclass(frozen=True)
class AssistantLimits:
    """POST /api/assistant/ask limits (ASSISTANT_RATE_LIMIT_*), shared through Redis when REDIS_URL is set."""

    per_user: RateLimiter
    per_ip: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> AssistantLimits:
        storage = make_storage(settings.redis_url.get_secret_value() if settings.redis_url else None)
        window = settings.assistant_rate_limit_window_seconds
        return cls(
            per_user=RateLimiter(storage, "assistant_user", settings.assistant_rate_limit_user_requests, window),
            per_ip=RateLimiter(storage, "assistant_ip", settings.assistant_rate_limit_ip_requests, window),
        )


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
    store: SqlStore
    outbox: OutboxRepository
    crm: CRM = field(default_factory=NoCRM)
    crm_http: httpx.AsyncClient | None = None  # shared by the CRM adapters; closed with the runtime
    run_bot: bool = False
    notifier: Notifier = field(default_factory=LoggingNotifier)  # the Telegram adapter replaces it
    lead_service: LeadService | None = None
    llm: LLM | None = None  # None without OPENAI_API_KEY: the offline policy answers
    assistant: AssistantService | None = None
    assistant_limits: AssistantLimits | None = None
    version: str = __version__
    started_at: datetime = field(default_factory=utcnow)
    # "Now" for checks that compare against signed times (Mini App initData); tests pin it.
    clock: Callable[[], datetime] = utcnow
    background: list[BackgroundService] = field(default_factory=list)
    preflight: object | None = None  # the last adapters.preflight.Report
    catalog: Catalog = field(default_factory=lambda: Catalog({}))
    knowledge: KnowledgeBackend = field(default_factory=lambda: LocalKnowledge({}))
    # "Today" for session dates (Moscow time); tests replace it to pin the calendar.
    today: Callable[[], date] = school_today
    telegram: TelegramService | None = None  # set when TELEGRAM_BOT_TOKEN is configured
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
        await self.db.dispose()


def build_runtime(
    settings: Settings,
    *,
    paths: DataPaths | None = None,
    run_bot: bool = False,
    content: tuple[Catalog, KnowledgeBackend] | None = None,
) -> Runtime:
    """Build every component. ``run_bot``: this process also runs the Telegram polling bot.
    ``content``: an already loaded catalog and knowledge base (evals build many runtimes on one content)."""
    paths = paths or resolve_data_paths(settings)
    db = Database(database_url_for(settings, paths))
    users, conversations = UserRepository(db), ConversationRepository(db)
    messages, leads = MessageRepository(db), LeadRepository(db)
    consents, usage = ConsentRepository(db), UsageRepository(db)
    real_crm = settings.crm_provider is not CrmProvider.none
    crm_http = make_http_client(settings.crm_timeout_seconds) if real_crm else None
    runtime = Runtime(
        settings=settings,
        paths=paths,
        db=db,
        users=users,
        conversations=conversations,
        messages=messages,
        leads=leads,
        consents=consents,
        usage=usage,
        store=SqlStore(db, leads, consents, redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None),
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

    async def record_vector_search(purpose: str) -> None:
        await runtime.usage.add(ModelUsage(model="vector_store", purpose=purpose))

    if content is not None:
        runtime.catalog, runtime.knowledge = content
    else:
        # Brand files with errors are left out here; preflight reports them (and blocks start-up unless off).
        runtime.catalog, _ = read_catalog(settings.catalog_path)
        runtime.knowledge = build_knowledge(settings, usage_recorder=record_vector_search)
    if settings.telegram_bot_token is not None:
        from adapters.telegram.service import install_telegram

        # Before the assistant is wired: it takes the Telegram notifier (handoff cards, confirmations).
        install_telegram(runtime, run_bot=run_bot)
    wire_assistant(runtime)
    return runtime


def _count_model_failure(kind: str) -> None:
    # Imported here: the metrics module belongs to the HTTP layer, which imports this module.
    from adapters.http.metrics import MODEL_ERRORS

    MODEL_ERRORS.labels(kind).inc()


def wire_assistant(runtime: Runtime) -> None:
    """Build the assistant from the runtime's parts; call again after replacing one (tests, the bot)."""
    settings = runtime.settings
    provider = None if settings.crm_provider is CrmProvider.none else settings.crm_provider.value
    runtime.lead_service = LeadService(runtime.store, legal_path=settings.legal_path, outbox_provider=provider)
    runtime.assistant_limits = runtime.assistant_limits or AssistantLimits.from_settings(settings)
    if runtime.llm is None and settings.llm_configured:
        # Imported here: the openai SDK costs 0.4-0.8 s of start-up that the offline mode never needs.
        from agent.llm import LLM

        runtime.llm = LLM(settings)
    model = None
    if runtime.llm is not None:
        tools = build_tools(settings)
        model = ModelTurn(settings, runtime.llm, tools, tool_schemas(tools), load_prompts(settings), runtime.store)
    runtime.assistant = AssistantService(
        settings=settings,
        store=runtime.store,
        catalog=runtime.catalog,
        knowledge=runtime.knowledge,
        leads=runtime.lead_service,
        notifier=runtime.notifier,
        model=model,
        crm=runtime.crm,
        today=lambda: runtime.today(),  # tests pin runtime.today after wiring
        on_model_failure=_count_model_failure,
    )


def settle_startup_heap() -> None:
    """Exempt what start-up built (modules, catalog, knowledge index, prompts, pools) from the cyclic
    garbage collector: its collections otherwise rescan those long-lived objects again and again while
    turns allocate, CPU on the event loop that concurrent conversations queue behind (about 3 points of
    bench/agent_service.py's concurrency figure). They stay alive as long as the process anyway; objects
    that die are still freed by reference counting."""
    gc.freeze()
