"""One conversational turn: Telegram event -> Inbound -> assistant -> rendered Reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.types import User

from adapters.crm.leadtest import LeadTestResult
from adapters.storage.repositories import UserRepository
from adapters.telegram.claims import ensure_claim
from adapters.telegram.drafts import DraftSupport, StartGate, TelegramLiveReply
from adapters.telegram.rendering import send_reply
from adapters.telegram.sender import SendPolicy
from agent.errors import AgentError, InvalidInput
from agent.ports import Assistant, Knowledge
from agent.settings import Settings
from agent.streaming import live_reply
from agent.types import Channel, Inbound, Reply

log = logging.getLogger(__name__)

INVALID_INPUT_TEXT = "Кажется, здесь что-то не так: {reason}. Попробуйте, пожалуйста, ещё раз."
AGENT_ERROR_TEXT = (
    "Извините, сейчас не получается ответить. Попробуйте чуть позже или напишите /manager — "
    "подключим менеджера."
)


@dataclass
class TelegramContext:
    """What the handlers use (aiogram injects it by name from the dispatcher's workflow data); the
    composition root builds it once. Deliberately not the whole runtime: a handler sees the assistant,
    the send policy and the two admin smoke tests' parts, nothing else."""

    settings: Settings
    assistant: Assistant
    policy: SendPolicy
    knowledge: Knowledge  # /kbtest
    lead_test: Callable[[str], Awaitable[LeadTestResult]]  # /leadtest
    users: UserRepository  # /forget
    drafts: DraftSupport = field(default_factory=DraftSupport)
    starts: StartGate = field(default_factory=StartGate)

    def is_admin(self, user: User | None) -> bool:
        return user is not None and user.id in self.settings.admin_telegram_ids


def inbound_for(user: User, update_id: int, **fields: Any) -> Inbound:
    return Inbound(
        channel=Channel.telegram,
        user_id=str(user.id),
        first_name=user.first_name,
        username=user.username,
        # Scoped to the sender: Telegram restarts update ids at random after a week of silence, so an id
        # alone may come back for another user once the queue's duplicate window has passed.
        idempotency_key=f"tg:{user.id}:{update_id}",
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
    """Ask the assistant while showing its progress (a growing draft, or "typing" where drafts are
    refused: adapters/telegram/drafts.py), then send what it answered (and return it).

    Errors the core raises on purpose become a polite message; anything else propagates so the
    queue retries the update.
    """
    async with TelegramLiveReply(bot, chat_id, tg.drafts) as live:
        with live_reply(live):
            await tg.starts.wait()  # the feedback is on its way; the turn's start-up waits its turn
            try:
                reply = await call()
            except InvalidInput as error:
                reply = Reply(text=INVALID_INPUT_TEXT.format(reason=error.reason))
            except AgentError as error:
                log.warning("assistant refused the turn: %s", type(error).__name__)
                reply = Reply(text=AGENT_ERROR_TEXT)
    await ensure_claim()  # a worker whose lease lapsed meanwhile leaves the reply to the one holding it
    await send_reply(
        bot, chat_id, reply, webapp_url=tg.settings.user_webapp_url, remove_keyboard=remove_keyboard
    )
    return reply
