"""Polling mode: getUpdates -> commit the batch to the queue -> only then confirm it (next offset).

A crash between the two steps re-delivers the batch, and the queue drops the duplicates, so no
update is ever lost (aiogram's own polling confirms before its handlers finish).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramConflictError, TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.methods import TelegramMethod

from adapters.retry import Backoff
from adapters.telegram.queue import UpdateQueue

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 25
# edited_message: a manager editing a message the relay carried edits the client's copy.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]


class GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates returning the updates exactly as Telegram sent them, to store them verbatim."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


class PollingService:
    name = "telegram-polling"

    def __init__(
        self,
        bot: Bot,
        queue: UpdateQueue,
        *,
        long_poll_seconds: int = LONG_POLL_SECONDS,
        retry: Backoff = Backoff(2.0, 60.0),  # TELEGRAM_POLLING_RETRY_BASE_SECONDS / _MAX_SECONDS
    ) -> None:
        self.bot = bot
        self.queue = queue
        self.retry = retry
        self.long_poll_seconds = long_poll_seconds

    async def run(self) -> None:
        log.info("Starting Telegram bot polling...")
        offset: int | None = None
        failures = 0
        while True:
            try:
                batch = await self.bot(
                    GetRawUpdates(offset=offset, timeout=self.long_poll_seconds, allowed_updates=ALLOWED_UPDATES),
                    request_timeout=self.long_poll_seconds + 10,
                )
                valid = [u for u in batch if isinstance(u, dict) and isinstance(u.get("update_id"), int)]
                await self.queue.enqueue_many(valid)
                if valid:
                    offset = max(u["update_id"] for u in valid) + 1
                failures = 0
            except asyncio.CancelledError:
                raise
            except TelegramRetryAfter as error:
                await asyncio.sleep(error.retry_after)
            except Exception as error:
                failures += 1
                delay = self.retry.delay(failures)
                log.error("polling failed (%s); retrying in %.0fs", _explain(error), delay)
                await asyncio.sleep(delay)


def _explain(error: Exception) -> str:
    if isinstance(error, TelegramConflictError):
        return "a webhook is set or another process polls this token: deleteWebhook or stop the other bot"
    if isinstance(error, TelegramUnauthorizedError):
        return "TELEGRAM_BOT_TOKEN was rejected"
    return f"{type(error).__name__}: {error}"
