"""The composition root: the one place that knows every concrete class.

The FastAPI app factory, the bot entry point and the scripts call ``build_runtime(settings)``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from adapters.storage.database import Database, database_url_for
from adapters.storage.models import utcnow
from adapters.storage.repositories import (
    ConsentRepository,
    ConversationRepository,
    LeadRepository,
    MessageRepository,
    UsageRepository,
    UserRepository,
)
from agent import __version__
from agent.paths import DataPaths, resolve_data_paths
from agent.settings import Settings

if TYPE_CHECKING:
    from adapters.telegram.service import TelegramService

log = logging.getLogger(__name__)


class BackgroundService(Protocol):
    """Something that runs beside the HTTP server (queue workers, the polling loop, the CRM outbox)."""

    name: str

    async def run(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    paths: DataPaths
    db: Database
    users: UserRepository
    conversations: ConversationRepository
    messages: MessageRepository
    leads: LeadRepository
    consents: ConsentRepository
    usage: UsageRepository
    run_bot: bool = False
    version: str = __version__
    started_at: datetime = field(default_factory=utcnow)
    background: list[BackgroundService] = field(default_factory=list)
    preflight: object | None = None  # the last adapters.preflight.Report
    telegram: TelegramService | None = None  # set when TELEGRAM_BOT_TOKEN is configured
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start_background(self) -> None:
        for service in self.background:
            log.info("starting %s", service.name)
            self._tasks.append(asyncio.create_task(service.run(), name=service.name))

    async def stop_background(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("%s stopped with an error", task.get_name())
        self._tasks.clear()

    async def close(self) -> None:
        await self.stop_background()
        if self.telegram is not None:
            await self.telegram.close()
        await self.db.dispose()


def build_runtime(settings: Settings, *, paths: DataPaths | None = None, run_bot: bool = False) -> Runtime:
    """Build every component. ``run_bot``: this process also runs the Telegram polling bot."""
    paths = paths or resolve_data_paths(settings)
    db = Database(database_url_for(settings, paths))
    runtime = Runtime(
        settings=settings,
        paths=paths,
        db=db,
        users=UserRepository(db),
        conversations=ConversationRepository(db),
        messages=MessageRepository(db),
        leads=LeadRepository(db),
        consents=ConsentRepository(db),
        usage=UsageRepository(db),
        run_bot=run_bot,
    )
    if settings.telegram_bot_token is not None:
        from adapters.telegram.service import install_telegram

        install_telegram(runtime, run_bot=run_bot)
    return runtime
