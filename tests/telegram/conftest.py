"""Fixtures for the Telegram adapter: the fake Bot API, settings pointing at it, a running service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.http.app import create_app
from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from agent.settings import Settings
from tests.conftest import make_settings
from tests.crm_helpers import wait_for
from tests.fakes.telegram_api import FakeBotAPI

TOKEN = "123456789:AAF_test-token-for-the-fake-bot-api-00"
SECRET = "webhook-secret_123"


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotAPI]:
    api = FakeBotAPI()
    await api.start()
    yield api
    await api.stop()


def telegram_settings(tmp_path: Path, api_url: str, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_api_base_url": api_url,
        "telegram_webhook_secret": SECRET,
        "telegram_mode": "webhook",
        "telegram_queue_poll_seconds": 0.05,
        "telegram_queue_retry_base_seconds": 0.05,
        # The per-chat limit has its own test; elsewhere it would only slow the suite down.
        "telegram_send_chat_per_second": 1000,
        "telegram_send_chat_burst": 1000,
        "telegram_send_global_per_second": 10000,
        "startup_preflight_mode": "off",
    }
    if database_url:
        values["database_url"] = database_url
    values.update(overrides)
    return make_settings(tmp_path, **values)


class Service:
    """A running service (API + background services) and ways to deliver updates to it."""

    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, api: FakeBotAPI) -> None:
        self.runtime = runtime
        self.client = client
        self.api = api

    @property
    def polling(self) -> bool:
        return self.runtime.settings.telegram_mode == "polling"

    async def deliver(self, update: dict[str, Any]) -> None:
        """Webhook mode: POST it like Telegram; polling mode: hand it to getUpdates."""
        if self.polling:
            self.api.push_update(update)
            return
        response = await self.client.post(
            self.runtime.settings.telegram_webhook_path,
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status_code == 200, response.text

    async def queue_idle(self) -> bool:
        stats = await self.runtime.telegram.queue.stats()  # type: ignore[union-attr]
        counts = stats["counts"]
        return counts["queued"] + counts["processing"] + counts["retry"] == 0

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the queue has nothing left to run: the relay jobs an HTTP request queued too."""
        await wait_for(self.queue_idle, timeout=timeout, what="the update queue to drain")

    async def settle(self, update_id: int, timeout: float = 10.0) -> None:
        """Wait until the update is queued and finished (done or dead)."""
        async def finished() -> bool:
            async with self.runtime.db.engine.connect() as conn:
                from sqlalchemy import text

                row = (await conn.execute(text("SELECT status FROM telegram_updates WHERE update_id = :u"), {"u": update_id})).first()
            return row is not None and row[0] in {"done", "dead"}

        await wait_for(finished, timeout=timeout, what=f"update {update_id} to finish")


@asynccontextmanager
async def running_service(
    settings: Settings, api: FakeBotAPI, *, assistant: Any = None, run_bot: bool | None = None
) -> AsyncIterator[Service]:
    """The service with the real assistant, or ``assistant`` in its place (built in, not patched)."""
    if run_bot is None:
        run_bot = settings.telegram_mode == "polling"
    runtime = build_runtime(settings, run_bot=run_bot, assistant=assistant)
    app = create_app(settings, runtime=runtime)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield Service(runtime, client, api)
