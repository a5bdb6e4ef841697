"""HTTP pieces of the Telegram adapter: the webhook ingress and the admin view of the update queue."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from adapters.http.auth import AdminDep
from adapters.http.dependencies import RuntimeDep
from adapters.telegram.webhook import WebhookIngress
from agent.settings import Settings, TelegramMode

router = APIRouter()


@router.get("/admin/telegram/queue")
async def queue_status(runtime: RuntimeDep, _: AdminDep) -> dict[str, object]:
    """Counts per status and the latest dead-lettered updates (they need a human look)."""
    if runtime.telegram is None:
        return {"ok": True, "configured": False}
    return {"ok": True, "configured": True, **await runtime.telegram.queue.stats()}


def install_routes(app: FastAPI, settings: Settings) -> None:
    """The admin view, and in webhook mode the webhook in front of everything (call it last, so the
    ingress is the outermost middleware: webhook requests skip the rest of the stack)."""
    app.include_router(router)
    if settings.telegram_bot_token is not None and settings.telegram_mode is TelegramMode.webhook:
        secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
        app.add_middleware(WebhookIngress, path=settings.telegram_webhook_path, secret=secret)
