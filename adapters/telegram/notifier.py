"""Notifier port over the bot: handoff cards to the staff chat, confirmations to users."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.text_decorations import html_decoration as hd

from adapters.telegram.rendering import MESSAGE_LIMIT
from agent.funnel import choice_label
from agent.ports import HandoffNotice

log = logging.getLogger(__name__)

PROFILE_LABELS = {
    "grade": "Класс",
    "goal": "Цель",
    "subject": "Предмет",
    "format": "Формат",
    "name": "Имя",
}


def _value(key: str, value: object) -> str:
    """«ОГЭ», «Математика», «Онлайн» as the funnel's buttons read, not the stored codes."""
    return choice_label(f"{key}:{value}") if key in ("goal", "subject", "format") else str(value)


def handoff_card(notice: HandoffNotice) -> str:
    """Who, why, the profile, the contact only when consented, the transcript link. HTML, escaped."""
    lines = [
        hd.bold("🙋 Нужен менеджер"),
        f"Кто: {hd.quote(notice.user_display)} ({hd.quote(notice.channel)}, бренд {hd.quote(notice.brand)})",
        f"Причина: {hd.quote(notice.reason)}",
    ]
    profile = [
        f"{PROFILE_LABELS[key]}: {hd.quote(_value(key, value))}"
        for key, value in notice.profile.items()
        if value not in (None, "", [], {}) and key in PROFILE_LABELS
    ]
    if profile:
        lines.append("Профиль: " + "; ".join(profile))
    lines.append(
        f"Контакт: {hd.quote(notice.contact)}" if notice.contact else "Контакт: нет согласия на обработку или телефон не оставлен"
    )
    url = notice.transcript_url or f"/admin/conversations/{notice.conversation_id}"
    if url.startswith(("https://", "http://")):
        lines.append(f'<a href="{html.escape(url, quote=True)}">Переписка #{notice.conversation_id}</a>')
    else:  # Telegram links only absolute URLs
        lines.append(f"Переписка: {hd.quote(url)}")
    return "\n".join(lines)[:MESSAGE_LIMIT]


class TelegramNotifier:
    """``open_relay``: the manager relay's handoff (a topic and its card), when MANAGER_RELAY_ENABLED;
    otherwise the card alone goes to MANAGER_CHAT_ID, as the runbook describes."""

    def __init__(
        self,
        bot: Bot,
        manager_chat_id: int | None,
        open_relay: Callable[[HandoffNotice], Awaitable[None]] | None = None,
    ) -> None:
        self.bot = bot
        self.manager_chat_id = manager_chat_id
        self.open_relay = open_relay

    async def notify_handoff(self, notice: HandoffNotice) -> None:
        if self.manager_chat_id is None:
            log.warning("handoff of conversation %s: MANAGER_CHAT_ID is not set", notice.conversation_id)
            return
        try:
            if self.open_relay is not None:
                await self.open_relay(notice)
            else:
                await self.bot.send_message(self.manager_chat_id, handoff_card(notice), disable_web_page_preview=True)
        except TelegramAPIError as error:
            # The handoff itself is stored; the card is a courtesy the admin views can replace.
            log.error("handoff card for conversation %s not delivered: %s", notice.conversation_id, error)

    async def notify_user(self, telegram_user_id: int, text: str) -> None:
        try:
            await self.bot.send_message(telegram_user_id, hd.quote(text)[:MESSAGE_LIMIT])
        except TelegramAPIError as error:
            log.warning("notification to a user not delivered: %s", error)
