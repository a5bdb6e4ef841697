"""The Telegram adapter's parts: bot, dispatcher, queue, workers, polling, notifier.

The composition root (adapters/wiring.py) builds them when a token is set, in two steps because the
assistant sits in between: ``build_bot`` (the bot, its send policy, the staff relay and the notifier
the assistant takes), then ``TelegramService`` (the dispatcher with the handlers' workflow data, the
queue, the workers and polling). Which services run in a process (``TelegramService.background``):
- polling mode, ``run_bot`` (``serve`` with a token, or ``bot``): polling + workers;
- webhook mode (``serve``: the webhook route + workers; ``bot``: workers only);
- polling mode with ``serve --no-bot``: neither (a separate ``bot`` process does it).
Start-up never waits for Telegram: getMe and setMyCommands retry in the background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import Update
from aiogram.utils.text_decorations import html_decoration as hd
from pydantic import ValidationError

from adapters.http.ratelimit import make_storage
from adapters.retry import Backoff
from adapters.storage.database import Database
from adapters.storage.relay import RelayRepository
from adapters.storage.repositories import UserRepository
from adapters.storage.stores import SqlStore
from adapters.telegram.drafts import update_received
from adapters.telegram.notifier import TelegramNotifier
from adapters.telegram.polling import PollingService
from adapters.telegram.queue import ClaimedUpdate, UpdateQueue
from adapters.telegram.relay import router as relay_router
from adapters.telegram.relay.idle import IdleReturn
from adapters.telegram.relay.jobs import RelayJobs, in_queue, job_of
from adapters.telegram.relay.staff import StaffRelay
from adapters.telegram.routers import all_routers
from adapters.telegram.routers.commands import COMMANDS
from adapters.telegram.sender import SendPolicy
from adapters.telegram.turns import TelegramContext
from adapters.telegram.workers import PermanentFailure, UpdateWorkers
from agent.settings import Settings, TelegramMode

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class TelegramBot:
    """The bot and what sends through it; built before the assistant, which takes its notifier."""

    bot: Bot
    policy: SendPolicy
    relay: StaffRelay | None  # None when MANAGER_RELAY_ENABLED is off or there is no MANAGER_CHAT_ID
    notifier: TelegramNotifier


def build_bot(
    settings: Settings,
    users: UserRepository,
    db: Database,
    store: SqlStore,
    release: Callable[[int], Awaitable[None]],
) -> TelegramBot:
    """``release``: hands a conversation back to the assistant (the staff relay's «return to bot»).
    Raises aiogram's TokenValidationError for a malformed token."""
    assert settings.telegram_bot_token is not None
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    policy = SendPolicy(settings, users, make_storage(redis_url))
    bot = make_bot(settings.telegram_bot_token.get_secret_value(), settings.telegram_api_base_url, policy)
    relay = None
    if settings.manager_relay_enabled and settings.manager_chat_id is not None:
        relay = StaffRelay(
            bot, settings.manager_chat_id, RelayRepository(db), store, release,
            idle_hours=settings.handoff_idle_hours, admin_url=settings.admin_webapp_url,
        )
    notifier = TelegramNotifier(bot, settings.manager_chat_id, relay.handoff if relay is not None else None)
    return TelegramBot(bot, policy, relay, notifier)


class TelegramService:
    def __init__(
        self, settings: Settings, parts: TelegramBot, db: Database, context: TelegramContext,
        queue: UpdateQueue | None = None,
    ) -> None:
        self.settings = settings
        self.bot, self.policy, self.relay, self.notifier = parts.bot, parts.policy, parts.relay, parts.notifier
        # Handlers get the context and the relay by name (aiogram workflow data); relay is None when off.
        self.dispatcher = Dispatcher(tg=context, relay=self.relay)
        self.assistant = context.assistant  # learns the bot's own @name at start-up
        if self.relay is not None:
            self.dispatcher.include_router(relay_router.build(self.relay))  # first: the staff chat stays there
            self.dispatcher.include_router(relay_router.client_edits(self.relay))
        self.dispatcher.include_routers(*all_routers())
        self.dispatcher.update.outer_middleware(self._sender_is_back)
        self.queue = queue or UpdateQueue.from_settings(settings, db)
        if self.relay is not None:
            self.relay.jobs = RelayJobs(self.queue)  # relay work of HTTP requests goes through the queue
        self.workers = UpdateWorkers(
            self.queue,
            self.process,
            concurrency=settings.telegram_queue_concurrency,
            poll_seconds=settings.telegram_queue_poll_seconds,
            on_dead=self.apologise,
            claim_retry=Backoff(2 * settings.telegram_queue_poll_seconds, settings.telegram_claim_retry_max_seconds),
        )
        self.polling = PollingService(
            self.bot,
            self.queue,
            retry=Backoff(settings.telegram_polling_retry_base_seconds, settings.telegram_polling_retry_max_seconds),
        )
        self.startup_retry = Backoff(
            settings.telegram_startup_retry_base_seconds, settings.telegram_startup_retry_max_seconds
        )
        self.bot_username: str | None = None

    def background(self, *, run_bot: bool) -> list[Any]:
        """What runs beside the server in this process (see the module docstring)."""
        webhook = self.settings.telegram_mode is TelegramMode.webhook
        services: list[Any] = []
        if run_bot or webhook:
            services += [_Startup(self), self.workers]
            if self.relay is not None:
                services.append(IdleReturn(self.relay))
        if run_bot and not webhook:
            services.append(self.polling)
        return services

    async def process(self, item: ClaimedUpdate) -> None:
        token = in_queue.set(True)
        try:
            await self._process(item)
        finally:
            in_queue.reset(token)

    async def _process(self, item: ClaimedUpdate) -> None:
        job = job_of(item)
        if job is not None:
            if self.relay is None:
                raise PermanentFailure("a relay job, and the relay is off (MANAGER_RELAY_ENABLED, MANAGER_CHAT_ID)")
            await self.relay.run_job(job)
            return
        try:
            update = Update.model_validate_json(item.payload, context={"bot": self.bot})
        except ValidationError as error:
            raise PermanentFailure(f"not a valid Telegram update ({error.error_count()} errors)") from None
        try:
            with update_received(item.received_at):  # feedback counts its delay from the arrival
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
                assistant = self.assistant
                if me.username and hasattr(assistant, "own_telegram_names"):
                    assistant.own_telegram_names.add(me.username.lower())  # replies may link to the bot itself
                log.info("Telegram bot @%s ready; commands registered", me.username)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                delay = self.startup_retry.delay(failures)
                log.warning("Telegram not reachable (%s); retrying in %.0fs", type(error).__name__, delay)
                await asyncio.sleep(delay)

    async def current_relay(self) -> StaffRelay | None:
        return self.relay

    async def close(self) -> None:
        await self.bot.session.close()
        await self.policy.aclose()


class _Startup:
    name = "telegram-startup"

    def __init__(self, service: TelegramService) -> None:
        self.run = service.run_startup
