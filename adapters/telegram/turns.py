"""One conversational turn: Telegram event -> Inbound -> assistant -> rendered Reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.types import User
from aiogram.utils.chat_action import ChatActionSender

from adapters.telegram.rendering import send_reply
from adapters.telegram.sender import SendPolicy
from agent.errors import AgentError, InvalidInput
from agent.ports import Assistant
from agent.settings import Settings
from agent.types import Channel, Inbound, Reply

if TYPE_CHECKING:
    from adapters.wiring import Runtime

log = logging.getLogger(__name__)

TYPING_INTERVAL_SECONDS = 4.5  # "typing" fades after 5 s
TYPING_DELAY_SECONDS = 0.3  # a reply faster than this needs no indicator (and saves a request)
INVALID_INPUT_TEXT = "Кажется, здесь что-то не так: {reason}. Попробуйте, пожалуйста, ещё раз."
AGENT_ERROR_TEXT = (
    "Извините, сейчас не получается ответить. Попробуйте чуть позже или напишите /manager — "
    "подключим менеджера."
)


@dataclass
class TelegramContext:
    """What every handler gets (aiogram injects it by name from the dispatcher's workflow data)."""

    runtime: Runtime
    policy: SendPolicy

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def assistant(self) -> Assistant:
        assert self.runtime.assistant is not None  # wired by build_runtime
        return self.runtime.assistant

    def is_admin(self, user: User | None) -> bool:
        return user is not None and user.id in self.settings.admin_telegram_ids


def inbound_for(user: User, update_id: int, **fields: Any) -> Inbound:
    return Inbound(
        channel=Channel.telegram,
        user_id=str(user.id),
        first_name=user.first_name,
        username=user.username,
        idempotency_key=f"tg:{update_id}",
        **fields,
    )


async def run_turn(
    tg: TelegramContext,
    bot: Bot,
    chat_id: int,
    call: Callable[[], Awaitable[Reply]],
    *,
    remove_keyboard: bool = False,
) -> Reply:
    """Ask the assistant while showing "typing", then send what it answered (and return it).

    Errors the core raises on purpose become a polite message; anything else propagates so the
    queue retries the update.
    """
    typing = ChatActionSender.typing(
        bot=bot, chat_id=chat_id, interval=TYPING_INTERVAL_SECONDS, initial_sleep=TYPING_DELAY_SECONDS
    )
    async with typing:
        try:
            reply = await call()
        except InvalidInput as error:
            reply = Reply(text=INVALID_INPUT_TEXT.format(reason=error.reason))
        except AgentError as error:
            log.warning("assistant refused the turn: %s", type(error).__name__)
            reply = Reply(text=AGENT_ERROR_TEXT)
    await send_reply(
        bot, chat_id, reply, webapp_url=tg.settings.user_webapp_url, remove_keyboard=remove_keyboard
    )
    return reply
