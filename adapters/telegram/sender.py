"""Every Bot API call goes through SendPolicy (an aiogram session middleware):

- message-sending methods wait for Telegram's limits (about 1/s per chat with short bursts, 30/s
  overall; shared between processes through Redis when REDIS_URL is set);
- 429 waits ``retry_after`` and tries again; 5xx and network errors back off exponentially;
- 403 from a private chat marks the user blocked, and nothing is sent to them again until they
  write to the bot;
- "can't parse entities" resends the text as plain text;
- the typing indicator is best-effort: its failures never fail an update;
- drafts (``sendMessageDraft``, the growing answer) are feedback like the typing indicator: they take
  nothing from the per-chat and global budgets the messages need (adapters/telegram/drafts.py sends
  at most one a second per chat and stops a turn's drafts at a 429), and they are never retried: the
  caller drops a failed draft.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Callable
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendChatAction, SendMessage, SendMessageDraft, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential

from adapters.http.ratelimit import SharedSpacing, SharedWindow, wait_for_slot
from adapters.retry import Backoff
from adapters.storage.repositories import UserRepository
from agent.settings import Settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A longer flood wait fails the update instead; the queue retries it later without holding a worker.
MAX_RETRY_AFTER_SECONDS = 60
_TAG = re.compile(r"<[^>]+>")


def html_to_plain(text: str) -> str:
    """Our HTML escapes every user/model character, so dropping tags and unescaping is exact."""
    return html.unescape(_TAG.sub("", text))


def _is_message(method: TelegramMethod[Any]) -> bool:
    name = method.__api_method__
    return name.startswith(("send", "copy", "forward")) and name not in ("sendChatAction", "sendMessageDraft")


def _retryable(error: BaseException) -> bool:
    if isinstance(error, TelegramRetryAfter):
        return error.retry_after <= MAX_RETRY_AFTER_SECONDS
    return isinstance(error, (TelegramServerError, TelegramNetworkError))


def _waiting(backoff: wait_exponential) -> Callable[[RetryCallState], float]:
    """Telegram's retry_after when it gave one, else the backoff."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TelegramRetryAfter):
            return float(error.retry_after)
        return float(backoff(state))

    return wait


# aiogram reads every Bot API answer through ``Response[method.__returning__]``; pydantic keeps such
# parametrised models only weakly, so the class was collected and rebuilt (schema and validator, ~2 ms
# of CPU) over and over: with the workers busy that was a sixth of the process's time. Held here,
# one per method type, each is built once.
_RESPONSE_TYPES: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}


def hold_response_type(method: TelegramMethod[Any]) -> None:
    if type(method) not in _RESPONSE_TYPES:
        _RESPONSE_TYPES[type(method)] = Response[method.__returning__]  # type: ignore[name-defined]


# The share of TELEGRAM_SEND_GLOBAL_PER_SECOND the replicas pace to together (see SendPolicy).
GLOBAL_HEADROOM = 0.8


class SendPolicy(BaseRequestMiddleware):
    def __init__(self, settings: Settings, users: UserRepository, storage: Storage) -> None:
        self.users = users
        # TELEGRAM_SEND_RETRY_BASE_SECONDS / _MAX_SECONDS
        retry = Backoff(settings.telegram_send_retry_base_seconds, settings.telegram_send_retry_max_seconds)
        self._wait = _waiting(retry.tenacity_wait())
        self.limiter = MovingWindowRateLimiter(storage)
        self.global_limit = RateLimitItemPerSecond(settings.telegram_send_global_per_second, 1)
        # With Redis the processes share the global budget evenly spaced on Redis's clock (SharedSpacing),
        # at GLOBAL_HEADROOM of it: a moving window lets the budget go as one burst, which reaches the Bot
        # API spread over the replicas' scheduling delays and overlaps the next burst there (39-47 in one
        # second against 30); evenly spaced at the full rate, a sender's stall then catch-up still put
        # 35 in one second on a loaded 2-core machine, and with hundreds of sends waiting, a saturated
        # process woke them late and they went out together (38-50): at most the paced number are used
        # in any second on Redis's clock, however late their senders woke (bench/scale_webhooks.py).
        paced = max(1, int(settings.telegram_send_global_per_second * GLOBAL_HEADROOM))
        self.global_pace = (
            SharedSpacing(settings.redis_url.get_secret_value(), "tg_send_all", paced)
            if settings.redis_url else None
        )
        burst = settings.telegram_send_chat_burst
        window = max(1, round(burst / settings.telegram_send_chat_per_second))
        self.chat_limit = RateLimitItemPerSecond(burst, window)
        # With Redis each chat's budget is counted on Redis's clock too (limits' window stamps the
        # caller's clock read before the round trip: a loaded replica's entry lands early).
        self.chat_window = (
            SharedWindow(settings.redis_url.get_secret_value(), "tg_send_chat", burst, window)
            if settings.redis_url else None
        )
        self.blocked: set[int] = set()
        # Without Redis, messages wait for the global budget in turn: only the first polls the window
        # (each poll is a few limiter calls); hundreds of waiting messages all woke at each freed slot.
        self._global_turn = asyncio.Lock()
        # With Redis, one global reservation at a time per process (see _take_slots).
        self._reserving = asyncio.Lock()

    async def aclose(self) -> None:
        if self.global_pace is not None:
            await self.global_pace.aclose()
        if self.chat_window is not None:
            await self.chat_window.aclose()

    async def load_blocked(self) -> None:
        stored = await self.users.blocked_external_ids("telegram")
        # A union: a 403 may already have arrived while this was loading.
        self.blocked |= {int(x) for x in stored if x.lstrip("-").isdigit()}

    async def unblock(self, telegram_id: int) -> None:
        """The user wrote to the bot again, so they have unblocked it."""
        if telegram_id in self.blocked:
            self.blocked.discard(telegram_id)
            user = await self.users.get_or_create("telegram", str(telegram_id))
            await self.users.unblock(user.id)  # type: ignore[arg-type]

    async def mark_blocked(self, chat_id: int) -> None:
        self.blocked.add(chat_id)
        user = await self.users.get_or_create("telegram", str(chat_id))
        await self.users.mark_blocked(user.id)  # type: ignore[arg-type]
        log.info("chat %s blocked the bot: no further messages", chat_id)

    async def _wait_for_slot(self, item: RateLimitItemPerSecond, key: str) -> None:
        await wait_for_slot(self.limiter, item, "tg_send", key)

    async def _take_slots(self, chat_id: int | str | None) -> None:
        """The chat's budget and the global one, then send at once: the chat's slot is taken right
        before sending (after the global wait, not before it), so a long global wait cannot bunch one
        chat's messages whose slots were taken seconds apart."""
        if self.global_pace is None:
            if chat_id is not None:
                await self._wait_for_slot(self.chat_limit, str(chat_id))
            async with self._global_turn:
                await self._wait_for_slot(self.global_limit, "all")
            return
        assert self.chat_window is not None  # both come with REDIS_URL
        while True:
            if chat_id is not None:
                await self.chat_window.wait_for_room(str(chat_id))
            # The global moment is checked (at most the paced number used in any second) and the
            # chat's entry taken in one Redis step right before sending.
            # Another replica may have taken the chat's room meanwhile: then the global moment goes
            # unused (spacing stays within the budget) and the message waits again.
            key = None if chat_id is None else str(chat_id)
            # One reservation at a time per process: hundreds of waiting sends each holding a moment
            # seconds ahead woke together on a busy loop and gave most of them up; one in turn
            # waits at most a few moments, and a late wake costs one.
            async with self._reserving:
                wait = await self.global_pace.take(self.chat_window, key)
            if wait <= 0:
                return

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Any:
        hold_response_type(method)
        chat_id = getattr(method, "chat_id", None)
        if isinstance(chat_id, int) and chat_id in self.blocked:
            raise TelegramForbiddenError(method=method, message="Forbidden: the user blocked the bot earlier")
        if isinstance(method, SendChatAction):
            try:
                return await make_request(bot, method)
            except TelegramAPIError as error:
                log.debug("typing indicator failed: %s", error)
                return False
        if isinstance(method, SendMessageDraft):
            return await make_request(bot, method)
        try:
            return await self._with_retries(make_request, bot, method)
        except TelegramForbiddenError:
            if isinstance(chat_id, int) and chat_id > 0:
                await self.mark_blocked(chat_id)
            raise
        except TelegramBadRequest as error:
            if isinstance(method, SendMessage) and "can't parse entities" in error.message.lower():
                log.warning("Telegram could not parse the HTML; resending as plain text")
                plain = method.model_copy(update={"text": html_to_plain(method.text), "parse_mode": None, "entities": None})
                return await self._with_retries(make_request, bot, plain)
            raise

    async def _with_retries(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Any:
        chat_id = getattr(method, "chat_id", None)
        limited = _is_message(method)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable), wait=self._wait, stop=stop_after_attempt(MAX_ATTEMPTS), reraise=True
        ):
            with attempt:
                if limited:
                    await self._take_slots(chat_id)
                result = await make_request(bot, method)
        return result
