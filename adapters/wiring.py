"""The composition root: the one place that knows every concrete class and builds objects.

``build_runtime(settings)`` builds everything in one go — no half-built object is patched later. Only
entry points import this module: adapters/main.py, the app factory's lifespan (adapters/http/app.py),
adapters/chat.py, the scripts, evals, bench and the tests' fixtures. Tests and evals inject their fakes
through the keyword arguments (``llm=``, ``notifier=``, ``crm=``, ``clock=``, ``today=``, ``assistant=``).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

from adapters.counters import MODEL_ERRORS
from adapters.crm.checks import crm_connection
from adapters.crm.factory import build_crm
from adapters.crm.leadtest import LeadTest
from adapters.crm.outbox import OutboxPolicy, OutboxWorker
from adapters.deferred_sdks import DeferredLLM, DeferredTelegram, SdkLoader, Warmup
from adapters.http.ratelimit import AssistantLimits, crm_api_limiter
from adapters.knowledge.backend import KnowledgeBackend, build_knowledge
from adapters.miniapp_checks import miniapp_checks
from adapters.notify import LoggingNotifier
from adapters.preflight import PreflightInputs
from adapters.retry import Backoff
from adapters.runtime import BackgroundService, Runtime
from adapters.storage.admin_queries import AdminQueries
from adapters.storage.database import Database, database_url_for
from adapters.storage.models import ModelUsage, utcnow
from adapters.storage.repositories import Repositories, UserRepository
from adapters.storage.stores import SqlStore
from adapters.storage.withdrawal import SqlWithdrawalStore
from adapters.telegram.queue import UpdateQueue
from agent.catalog import Catalog, read_catalog, school_today
from agent.leads import LeadService
from agent.model_turn import ModelTurn
from agent.paths import DataPaths, resolve_data_paths
from agent.ports import CRM, Assistant, Notifier
from agent.prompting import load_prompts
from agent.service import AssistantService
from agent.settings import CrmProvider, Settings
from agent.withdrawal import ConsentWithdrawal, StaffCopies
from tools.registry import build_tools, tool_schemas

if TYPE_CHECKING:
    from adapters.telegram.service import TelegramBot, TelegramService
    from agent.llm import LLM

log = logging.getLogger(__name__)


def build_runtime(
    settings: Settings,
    *,
    paths: DataPaths | None = None,
    run_bot: bool = False,
    content: tuple[Catalog, KnowledgeBackend] | None = None,
    llm: LLM | None = None,
    notifier: Notifier | None = None,
    crm: CRM | None = None,
    clock: Callable[[], datetime] = utcnow,
    today: Callable[[], date] = school_today,
    assistant: Assistant | None = None,
    defer_sdks: bool = False,
) -> Runtime:
    """Build every component. ``run_bot``: this process also runs the Telegram polling bot.
    ``content``: an already loaded catalog and knowledge base (evals build many runtimes on one content).
    ``llm``, ``notifier``, ``crm``: fakes that replace the configured ones (tests, evals, bench);
    ``assistant``: a stand-in for the whole assistant (transport tests and benchmarks).
    ``defer_sdks``: the openai and aiogram SDKs are loaded by a background service after start-up
    (`serve` does this; adapters/deferred_sdks.py), their stand-ins built now."""
    paths = paths or resolve_data_paths(settings)
    db = Database(database_url_for(settings, paths))
    repos = Repositories.on(db)
    users, leads, consents, usage = repos.users, repos.leads, repos.consents, repos.usage
    real_crm = settings.crm_provider is not CrmProvider.none
    crm_http = None
    if real_crm and crm is None:
        from adapters.crm.http import make_http_client  # httpx: only a configured CRM needs it

        crm_http = make_http_client(settings.crm_timeout_seconds)
    crm = crm or build_crm(settings, crm_http)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    store = SqlStore(db, leads, consents, redis_url=redis_url)

    async def record_vector_search(purpose: str) -> None:
        await usage.add(ModelUsage(model="vector_store", purpose=purpose))

    deferred_llm = None
    if llm is None and settings.llm_configured:
        if defer_sdks and not settings.openai_vector_store_id:  # the vector store needs the client now
            llm = deferred_llm = DeferredLLM(settings)  # type: ignore[assignment]  # the same calls
        else:
            # Imported here: the openai SDK costs 0.4-0.8 s of start-up that the offline mode never needs.
            from agent.llm import LLM

            llm = LLM(settings)
    if content is not None:
        catalog, knowledge = content
    else:
        # Brand files with errors are left out here; preflight reports them (and blocks start-up unless off).
        catalog, _ = read_catalog(settings.catalog_path)
        model_client = llm.client if llm is not None and settings.openai_vector_store_id else None
        knowledge = build_knowledge(settings, model_client, usage_recorder=record_vector_search)

    # The Telegram bot comes before the assistant (which takes its notifier), and its staff relay
    # hands conversations back to the assistant built below: the closure reads it when called.
    async def release(conversation_id: int) -> None:
        await assistant_service.release(conversation_id)

    deferred_telegram = None
    if defer_sdks and settings.telegram_bot_token is not None:
        bot = None
        queue = UpdateQueue.from_settings(settings, db)
        deferred_telegram = DeferredTelegram(queue, lambda: _build_telegram(
            settings, _build_bot(settings, users, db, store, release), db, assistant_service, knowledge,
            lead_test, users, queue,
        ))
        notifier = notifier or deferred_telegram.notifier
    else:
        bot = _build_bot(settings, users, db, store, release)
        notifier = notifier or (bot.notifier if bot is not None else LoggingNotifier())
    provider = None if settings.crm_provider is CrmProvider.none else settings.crm_provider.value
    lead_service = LeadService(store, catalog=catalog, legal_path=settings.legal_path, outbox_provider=provider)
    withdrawal = ConsentWithdrawal(SqlWithdrawalStore(db), staff=_staff_copies(bot, deferred_telegram, db))
    assistant_service: Assistant = assistant or _build_assistant(
        settings, store, catalog, knowledge, lead_service, notifier, crm, llm, today, withdrawal
    )
    lead_test = LeadTest(crm, lead_service, leads, settings.brand_default)
    telegram: TelegramService | DeferredTelegram | None = deferred_telegram or _build_telegram(
        settings, bot, db, assistant_service, knowledge, lead_test, users
    )
    background: list[BackgroundService] = []
    if real_crm:
        # `none` creates no outbox rows (LeadRepository.create(..., outbox_provider=None)), so no worker.
        retry = Backoff(settings.crm_retry_base_seconds, settings.crm_retry_max_seconds, jitter=0.1)
        background.append(OutboxWorker(crm, repos.outbox, leads, repos.messages, OutboxPolicy(retry=retry)))
    if deferred_llm is not None or deferred_telegram is not None:
        background.append(SdkLoader(deferred_telegram, run_bot=run_bot, llm=deferred_llm, settle=settle_startup_heap))
    elif telegram is not None:
        background += telegram.background(run_bot=run_bot)
    if defer_sdks:
        # The knowledge index is built after start-up too (a search arriving first builds it itself).
        background.append(Warmup("knowledge-index", knowledge.prepare, settle=settle_startup_heap))
    return Runtime(
        **repos.as_kwargs(),  # type: ignore[arg-type]  # the repositories, each by its field name
        settings=settings,
        paths=paths,
        db=db,
        store=store,
        crm=crm,
        crm_http=crm_http,
        catalog=catalog,
        knowledge=knowledge,
        notifier=notifier,
        lead_service=lead_service,
        llm=llm,
        assistant=assistant_service,
        assistant_limits=AssistantLimits.from_settings(settings),
        crm_api_limiter=crm_api_limiter(settings),
        admin_queries=AdminQueries(db),
        lead_test=lead_test,
        telegram=telegram,
        preflight_inputs=PreflightInputs(
            settings, paths, db, crm, today, extra_checks=(crm_connection, miniapp_checks)
        ),
        clock=clock,
        today=today,
        run_bot=run_bot,
        background=background,
    )


def _build_telegram(
    settings: Settings,
    bot: TelegramBot | None,
    db: Database,
    assistant: Assistant,
    knowledge: KnowledgeBackend,
    lead_test: LeadTest,
    users: UserRepository,
    queue: UpdateQueue | None = None,
) -> TelegramService | None:
    if bot is None:
        return None
    from adapters.telegram.service import TelegramService
    from adapters.telegram.turns import TelegramContext

    context = TelegramContext(
        settings=settings, assistant=assistant, policy=bot.policy, knowledge=knowledge,
        lead_test=lead_test, users=users,
    )
    return TelegramService(settings, bot, db, context, queue=queue)


def _build_bot(
    settings: Settings,
    users: UserRepository,
    db: Database,
    store: SqlStore,
    release: Callable[[int], Awaitable[None]],
) -> TelegramBot | None:
    if settings.telegram_bot_token is None:
        return None
    # Imported here: only a process with a bot token needs the Telegram adapter.
    from aiogram.utils.token import TokenValidationError

    from adapters.telegram.service import build_bot

    try:
        return build_bot(settings, users, db, store, release)
    except TokenValidationError as error:  # aiogram rejects a malformed token; preflight reports it too
        log.error("Telegram bot disabled: %s", error)
        return None


def _count_model_failure(kind: str) -> None:
    MODEL_ERRORS.labels(kind).inc()


def _staff_copies(bot: TelegramBot | None, deferred: DeferredTelegram | None, db: Database) -> StaffCopies | None:
    """Where a withdrawal also removes the client's messages: the manager relay's staff chat."""
    if deferred is not None:
        return _DeferredStaffCopies(deferred, db)
    if bot is None or bot.relay is None:
        return None
    from adapters.telegram.relay.erase import StaffChatCopies  # aiogram is loaded only with a bot

    return StaffChatCopies(bot.bot, db)


class _DeferredStaffCopies:
    """The staff-chat copies once the deferred Telegram service has loaded aiogram (a withdrawal in the
    first seconds after start-up waits for it rather than leaving the copies in the staff chat)."""

    def __init__(self, deferred: DeferredTelegram, db: Database) -> None:
        self.deferred = deferred
        self.db = db

    async def collect(self, user_id: int) -> object:
        service = await self.deferred.service()
        if service is None or service.relay is None:
            return None
        from adapters.telegram.relay.erase import StaffChatCopies

        copies = StaffChatCopies(service.bot, self.db)
        return copies, await copies.collect(user_id)

    async def remove(self, collected: object) -> int:
        if collected is None:
            return 0
        copies, threads = collected  # type: ignore[misc]
        return await copies.remove(threads)


def _build_assistant(
    settings: Settings,
    store: SqlStore,
    catalog: Catalog,
    knowledge: KnowledgeBackend,
    lead_service: LeadService,
    notifier: Notifier,
    crm: CRM,
    llm: LLM | None,
    today: Callable[[], date],
    withdrawal: ConsentWithdrawal,
) -> AssistantService:
    model = None
    if llm is not None:
        tools = build_tools(settings)
        schemas = None if isinstance(llm, DeferredLLM) else tool_schemas(tools)  # None: at the first turn
        model = ModelTurn(settings, llm, tools, schemas, load_prompts(settings), store)
    return AssistantService(
        settings=settings,
        store=store,
        catalog=catalog,
        knowledge=knowledge,
        lead_service=lead_service,
        notifier=notifier,
        model=model,
        crm=crm,
        withdrawal=withdrawal,
        today=today,
        on_model_failure=_count_model_failure,
    )


def settle_startup_heap() -> None:
    """Exempt what start-up built (modules, catalog, knowledge index, prompts, pools) from the cyclic
    garbage collector: its collections otherwise rescan those long-lived objects again and again while
    turns allocate, CPU on the event loop that concurrent conversations queue behind (about 3 points of
    bench/agent_service.py's concurrency figure). They stay alive as long as the process anyway; objects
    that die are still freed by reference counting.

    Also turns the collector back on: `serve` pauses it while the service starts (adapters/main.py). The
    few cycles start-up left as garbage by then are frozen with the rest (a one-off, measured at ~2 000
    objects), which costs less than the full collection that would find them (~0.1 s)."""
    gc.freeze()
    gc.enable()
