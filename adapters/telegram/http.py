"""HTTP pieces of the Telegram adapter: the webhook route and the admin view of the update queue."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from adapters.http.auth import AdminDep
from adapters.http.dependencies import RuntimeDep
from adapters.telegram.webhook import receive_update
from agent.settings import Settings, TelegramMode

router = APIRouter()


@router.get("/admin/telegram/queue")
async def queue_status(runtime: RuntimeDep, _: AdminDep) -> dict[str, object]:
    """Counts per status and the latest dead-lettered updates (they need a human look)."""
    if runtime.telegram is None:
        return {"ok": True, "configured": False}
    return {"ok": True, "configured": True, **await runtime.telegram.queue.stats()}


def install_routes(app: FastAPI, settings: Settings) -> None:
    app.include_router(router)
    if settings.telegram_bot_token is not None and settings.telegram_mode is TelegramMode.webhook:
        app.add_route(settings.telegram_webhook_path, receive_update, methods=["POST"], include_in_schema=False)
