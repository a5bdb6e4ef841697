"""The Telegram adapter assembled: bot, dispatcher, queue, workers, polling, notifier.

``install_telegram(runtime, run_bot=...)`` is called by the composition root when a token is set.
Which services run in a process:
- polling mode, ``run_bot`` (``serve`` with a token, or ``bot``): polling + workers;
- webhook mode (``serve``: the webhook route + workers; ``bot``: workers only);
- polling mode with ``serve --no-bot``: neither (a separate ``bot`` process does it).
Start-up never waits for Telegram: getMe and setMyCommands retry in the background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import Update
from aiogram.utils.text_decorations import html_decoration as hd
from aiogram.utils.token import TokenValidationError
from pydantic import ValidationError

from adapters.http.ratelimit import make_storage
from adapters.storage.relay import RelayRepository
from adapters.telegram.notifier import TelegramNotifier
from adapters.telegram.polling import PollingService
from adapters.telegram.queue import ClaimedUpdate, UpdateQueue
from adapters.telegram.relay import router as relay_router
from adapters.telegram.relay.idle import IdleReturn
from adapters.telegram.relay.staff import StaffRelay
from adapters.telegram.routers import all_routers
from adapters.telegram.routers.commands import COMMANDS
from adapters.telegram.sender import SendPolicy
from adapters.telegram.turns import TelegramContext
from adapters.telegram.workers import PermanentFailure, UpdateWorkers
from agent.settings import TelegramMode

if TYPE_CHECKING:
    from adapters.wiring import Runtime

log = logging.getLogger(__name__)

MAX_STARTUP_BACKOFF_SECONDS = 300.0
DEAD_LETTER_TEXT = (
    "Извините, не получилось обработать ваше сообщение. Мы уже разбираемся; если вопрос срочный, "
    "напишите /manager."
)


def make_bot(token: str, api_base_url: str, policy: SendPolicy) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base_url))
    session.middleware(policy)
    return Bot(
        token,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


class TelegramService:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        assert settings.telegram_bot_token is not None
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        self.runtime = runtime
        self.policy = SendPolicy(settings, runtime.users, make_storage(redis_url))
        self.bot = make_bot(settings.telegram_bot_token.get_secret_value(), settings.telegram_api_base_url, self.policy)
        self.relay = self._relay(runtime)
        # Handlers get the relay by name (aiogram workflow data); None when it is off.
        self.dispatcher = Dispatcher(tg=TelegramContext(runtime=runtime, policy=self.policy), relay=self.relay)
        if self.relay is not None:
            self.dispatcher.include_router(relay_router.build(self.relay))  # first: the staff chat stays there
        self.dispatcher.include_routers(*all_routers())
        self.dispatcher.update.outer_middleware(self._sender_is_back)
        self.queue = UpdateQueue(
            runtime.db,
            max_attempts=settings.telegram_queue_max_attempts,
            retry_base_seconds=settings.telegram_queue_retry_base_seconds,
            lease_seconds=settings.telegram_queue_lease_seconds,
            retention_hours=settings.telegram_queue_retention_hours,
        )
        self.workers = UpdateWorkers(
            self.queue,
            self.process,
            concurrency=settings.telegram_queue_concurrency,
            poll_seconds=settings.telegram_queue_poll_seconds,
            on_dead=self.apologise,
        )
        self.polling = PollingService(self.bot, self.queue)
        self.notifier = TelegramNotifier(
            self.bot, settings.manager_chat_id, self.relay.open if self.relay is not None else None
        )
        self.bot_username: str | None = None

    def _relay(self, runtime: Runtime) -> StaffRelay | None:
        settings = runtime.settings
        if not settings.manager_relay_enabled or settings.manager_chat_id is None:
            return None

        async def release(conversation_id: int) -> None:
            assert runtime.assistant is not None  # wired right after the Telegram adapter
            await runtime.assistant.release(conversation_id)

        return StaffRelay(
            self.bot, settings.manager_chat_id, RelayRepository(runtime.db), runtime.store, release,
            idle_hours=settings.handoff_idle_hours, admin_url=settings.admin_webapp_url,
        )

    async def process(self, item: ClaimedUpdate) -> None:
        try:
            update = Update.model_validate_json(item.payload, context={"bot": self.bot})
        except ValidationError as error:
            raise PermanentFailure(f"not a valid Telegram update ({error.error_count()} errors)") from None
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except TelegramForbiddenError:
            log.info("update %s: the user blocked the bot; nothing more is sent", item.update_id)

    async def apologise(self, item: ClaimedUpdate) -> None:
        """A dead-lettered update still deserves an answer: the user is told it was not processed."""
        if item.chat_id is not None and item.chat_id > 0:
            try:
                await self.bot.send_message(item.chat_id, hd.quote(DEAD_LETTER_TEXT))
            except Exception as error:
                log.warning("dead-letter notice not sent: %s", type(error).__name__)

    async def _sender_is_back(
        self, handler: Callable[[Update, dict[str, Any]], Awaitable[Any]], update: Update, data: dict[str, Any]
    ) -> Any:
        """A message or a button press from someone marked blocked means they unblocked the bot."""
        user = data.get("event_from_user")
        if user is not None and update.my_chat_member is None and user.id in self.policy.blocked:
            await self.policy.unblock(user.id)
        return await handler(update, data)

    async def run_startup(self) -> None:
        """getMe and setMyCommands, retried with backoff until Telegram answers."""
        await self.policy.load_blocked()
        failures = 0
        while True:
            try:
                me = await self.bot.get_me()
                await self.bot.set_my_commands(COMMANDS)
                self.bot_username = me.username
                log.info("Telegram bot @%s ready; commands registered", me.username)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                delay = min(2.0**failures, MAX_STARTUP_BACKOFF_SECONDS)
                log.warning("Telegram not reachable (%s); retrying in %.0fs", type(error).__name__, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        await self.bot.session.close()


class _Startup:
    name = "telegram-startup"

    def __init__(self, service: TelegramService) -> None:
        self.run = service.run_startup


def install_telegram(runtime: Runtime, *, run_bot: bool) -> TelegramService | None:
    settings = runtime.settings
    if settings.telegram_bot_token is None:
        return None
    try:
        service = TelegramService(runtime)
    except TokenValidationError as error:  # aiogram rejects a malformed token; preflight reports it too
        log.error("Telegram bot disabled: %s", error)
        return None
    runtime.telegram = service
    runtime.notifier = service.notifier
    webhook = settings.telegram_mode is TelegramMode.webhook
    if run_bot or webhook:
        runtime.background.append(_Startup(service))
        runtime.background.append(service.workers)
        if service.relay is not None:
            runtime.background.append(IdleReturn(service.relay))
    if run_bot and not webhook:
        runtime.background.append(service.polling)
    return service
