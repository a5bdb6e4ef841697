"""The notifier used when no Telegram bot runs in this process: it only logs (never the contact)."""

from __future__ import annotations

import logging

from agent.ports import HandoffNotice

log = logging.getLogger(__name__)


class LoggingNotifier:
    async def notify_handoff(self, notice: HandoffNotice) -> None:
        log.warning(
            "handoff: conversation %s (%s, %s): %s",
            notice.conversation_id, notice.brand, notice.channel, notice.reason,
        )

    async def notify_user(self, telegram_user_id: int, text: str) -> None:
        log.info("no bot in this process: a message for Telegram user %s was not sent", telegram_user_id)
