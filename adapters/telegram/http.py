"""HTTP piece of the Telegram adapter: the webhook ingress in front of the application."""

from __future__ import annotations

from fastapi import FastAPI

from adapters.telegram.webhook import WebhookIngress
from agent.settings import Settings, TelegramMode


def add_webhook_ingress(app: FastAPI, settings: Settings) -> None:
    """In webhook mode, the webhook ingress in front of the application. Call it after every other
    middleware but the request context, so webhook requests skip the rest of the stack."""
    if settings.telegram_bot_token is not None and settings.telegram_mode is TelegramMode.webhook:
        secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
        app.add_middleware(WebhookIngress, path=settings.telegram_webhook_path, secret=secret)
