"""HTTP piece of the Telegram adapter: the webhook, answered in front of the application."""

from __future__ import annotations

from typing import Any

from adapters.http.middleware import Answer
from adapters.telegram.webhook import WebhookIngress
from agent.settings import Settings, TelegramMode


def webhook_answers(settings: Settings, state: Any) -> dict[str, Answer]:
    """In webhook mode, the webhook path and what answers it (RequestContextMiddleware's ``answers``);
    ``state`` is the application's state, where its lifespan puts the queue."""
    if settings.telegram_bot_token is not None and settings.telegram_mode is TelegramMode.webhook:
        secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
        return {settings.telegram_webhook_path: WebhookIngress(settings.telegram_webhook_path, secret, state).answer}
    return {}
