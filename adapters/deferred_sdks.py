"""The OpenAI and Telegram SDKs, loaded after the port answers instead of before.

Importing aiogram builds ~450 pydantic models and the openai SDK a few hundred more: together seconds
of a 2-core machine's start-up (bench/startup.py), most of the time /api/health would otherwise wait
for. `serve` builds the runtime with ``defer_sdks=True`` (adapters/wiring.py): everything that needs
neither SDK is built at once (the database, the webhook's durable ingest into the update queue, the
assistant), and these stand-ins take the SDKs' places:

- ``DeferredLLM``: the model client. A turn that needs the model waits for the load (it starts on the
  first such call if the background load has not started yet), so no request gets an offline answer
  because the SDK was still loading.
- ``DeferredTelegram``: the bot. The webhook keeps committing updates to the queue meanwhile; the queue
  workers, the polling loop and getMe/setMyCommands start once the bot is built; handoff cards and user
  messages (``notifier``) and the staff relay wait for it.

The load runs as a background service (``SdkLoader``) a moment after start-up completes; the imports
run in a thread, so the event loop keeps answering while the modules are built.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agent.ports import HandoffNotice, Notifier
from agent.settings import Settings

if TYPE_CHECKING:
    from adapters.telegram.queue import UpdateQueue
    from adapters.telegram.relay.staff import StaffRelay
    from adapters.telegram.service import TelegramService
    from agent.llm import LLM

log = logging.getLogger(__name__)

# Start-up completes, then uvicorn opens the port; the load waits this long so the first health
# answers do not share the CPU with the imports.
LOAD_DELAY_SECONDS = 0.3


class _Once:
    """An async build run once; every caller awaits the same result (shielded from their cancellation)."""

    def __init__(self, build: Callable[[], Awaitable[Any]]) -> None:
        self._build = build
        self._task: asyncio.Task[Any] | None = None

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done() and not self._task.cancelled()

    def result(self) -> Any:
        return self._task.result() if self._task is not None and self.done else None

    async def get(self) -> Any:
        if self._task is None:
            self._task = asyncio.ensure_future(self._build())
        return await asyncio.shield(self._task)

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except BaseException:  # noqa: BLE001 - a cancelled load has nothing to report
                pass


async def import_in_thread(module: str) -> None:
    """Import ``module`` in a worker thread (the event loop keeps serving while it is built)."""
    started = time.perf_counter()
    await asyncio.to_thread(importlib.import_module, module)
    log.info("%s loaded in %.2f s", module, time.perf_counter() - started)


class DeferredLLM:
    """Stands for agent.llm.LLM until the openai SDK is loaded (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = settings.openai_model  # read by the usage records; known without the SDK
        self._llm = _Once(self._load)

    async def _load(self) -> LLM:
        await import_in_thread("agent.llm")
        from agent.llm import LLM
        from agent.loop import answer_format

        answer_format()  # the strict answer schema (cached), built with the SDK just loaded
        return LLM(self.settings)

    async def load(self) -> LLM:
        return await self._llm.get()

    async def respond(self, **kwargs: Any) -> Any:
        return await (await self.load()).respond(**kwargs)

    async def web_search(self, **kwargs: Any) -> Any:
        return await (await self.load()).web_search(**kwargs)

    async def aclose(self) -> None:
        llm = self._llm.result()
        if llm is not None:
            await llm.aclose()
        else:
            await self._llm.cancel()


class DeferredTelegram:
    """Stands for adapters.telegram.service.TelegramService until aiogram is loaded.

    ``build`` imports nothing heavy itself when called: it is called after aiogram's modules are
    loaded, and returns the service (or None when the bot cannot be built, e.g. a malformed token)."""

    def __init__(self, queue: UpdateQueue, build: Callable[[], TelegramService | None]) -> None:
        self.queue = queue  # the webhook's ingest needs only the database: ready at once
        self._build = build
        self._service = _Once(self._load)
        self.notifier = _DeferredNotifier(self)

    async def _load(self) -> TelegramService | None:
        await import_in_thread("adapters.telegram.service")
        return self._build()

    async def service(self) -> TelegramService | None:
        return await self._service.get()

    @property
    def relay(self) -> StaffRelay | None:
        service = self._service.result()
        return service.relay if service is not None else None

    async def current_relay(self) -> StaffRelay | None:
        service = await self.service()
        return service.relay if service is not None else None

    @property
    def bot_username(self) -> str | None:
        service = self._service.result()
        return service.bot_username if service is not None else None

    async def close(self) -> None:
        service = self._service.result()
        if service is not None:
            await service.close()
        else:
            await self._service.cancel()


class _DeferredNotifier:
    """The Telegram notifier once the bot is built; until then its calls wait for it."""

    def __init__(self, telegram: DeferredTelegram) -> None:
        self._telegram = telegram

    async def _notifier(self) -> Notifier:
        service = await self._telegram.service()
        if service is None:
            from adapters.notify import LoggingNotifier

            return LoggingNotifier()
        return service.notifier

    async def notify_handoff(self, notice: HandoffNotice) -> None:
        await (await self._notifier()).notify_handoff(notice)

    async def notify_user(self, telegram_user_id: int, text: str) -> None:
        await (await self._notifier()).notify_user(telegram_user_id, text)


class Warmup:
    """A background service that builds what the first requests would otherwise build themselves (the
    knowledge index: adapters/knowledge/local.py), a moment after start-up, off the event loop."""

    def __init__(self, name: str, prepare: Callable[[], Awaitable[None]], *, settle: Callable[[], None] | None = None) -> None:
        self.name = name
        self.prepare = prepare
        self.settle = settle

    async def run(self) -> None:
        await asyncio.sleep(LOAD_DELAY_SECONDS)
        started = time.perf_counter()
        await self.prepare()
        log.info("%s ready in %.2f s", self.name, time.perf_counter() - started)
        if self.settle is not None:
            self.settle()


class SdkLoader:
    """The background service that loads the SDKs after start-up, then runs what needs them."""

    name = "sdk-loader"

    def __init__(
        self, telegram: DeferredTelegram | None, *, run_bot: bool, llm: DeferredLLM | None = None,
        settle: Callable[[], None] | None = None,
    ) -> None:
        self.telegram = telegram
        self.run_bot = run_bot
        self.llm = llm
        self.settle = settle

    async def run(self) -> None:
        await asyncio.sleep(LOAD_DELAY_SECONDS)
        if self.llm is not None:
            await self.llm.load()
        services: list[Any] = []
        if self.telegram is not None:
            service = await self.telegram.service()
            if service is not None:
                services = service.background(run_bot=self.run_bot)
        if self.settle is not None:
            self.settle()  # what the load built is as long-lived as what start-up built
        for service in services:
            log.info("starting %s", service.name)
        # Each runs until cancelled (with this loader, at shutdown); one failing leaves the others running.
        results = await asyncio.gather(*(service.run() for service in services), return_exceptions=True)
        for service, result in zip(services, results):
            if isinstance(result, Exception):
                log.error("%s stopped with an error: %r", service.name, result)
