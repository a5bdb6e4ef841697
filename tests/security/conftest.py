"""Shared pieces of the security tests: the fake Bot API fixture and an app client that waits longer for
start-up than the default five seconds (the shared machine is sometimes slow to start an app)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.http.app import create_app
from adapters.wiring import Runtime
from agent.settings import Settings
from tests.assistant_helpers import FakeCRM, RecordingNotifier, model_runtime
from tests.telegram.conftest import fake_api  # noqa: F401  (a fixture, used by name)

STARTUP_TIMEOUT = 60


@asynccontextmanager
async def serve_app(
    settings: Settings, runtime: Runtime | None = None, *, client: tuple[str, int] = ("127.0.0.1", 123)
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, runtime=runtime)
    async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime whose model is faked at the HTTP seam (respx ``api``), with a recording CRM."""
    runtime = await model_runtime(tmp_path, crm=FakeCRM(), notifier=RecordingNotifier())
    yield runtime
    await runtime.close()
