"""`serve` answers /api/health before the openai and aiogram SDKs are loaded (adapters/deferred_sdks.py),
and nothing that arrives meanwhile is lost: an update posted to the webhook at the first 200 is
queued, then processed in order once the bot is built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.crm_helpers import wait_for
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import SECRET, TOKEN
from tests.telegram.test_processes import FUNNEL_REPLIES, START_TIMEOUT, _env, _free_port, child, first_replies, funnel

STARTED_WITHOUT_SDKS = """
import asyncio, gc, sys
from adapters.main import _pause_collector_until_started
_pause_collector_until_started()  # as `serve` does before it imports the app
from adapters.http.app import start_runtime
from adapters.wiring import build_runtime
from agent.settings import Settings

async def main():
    runtime = build_runtime(Settings(), defer_sdks=True)
    await start_runtime(runtime)  # migrations, preflight, background services started
    print(*(name in sys.modules for name in ("aiogram", "openai", "alembic", "bm25s", "numpy", "httpx", "markdown_it")))
    found = await runtime.knowledge.search("kmipt", "налоговый вычет")  # right away: builds the index itself
    print(found.relevant, "bm25s" in sys.modules, gc.isenabled())  # start-up turned the collector back on
    await runtime.close()

asyncio.run(main())
"""


def test_start_up_imports_neither_sdk_nor_alembic_nor_the_index(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PERSISTENT_DATA_PATH": str(tmp_path),
        "OPENAI_API_KEY": "sk-test-not-a-real-key", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9", "TELEGRAM_MODE": "webhook",
        "TELEGRAM_WEBHOOK_SECRET": SECRET, "STARTUP_PREFLIGHT_MODE": "off", "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", STARTED_WITHOUT_SDKS], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Nor Alembic (a new database is created from the models), nor the knowledge index's bm25s/numpy
    # (built after start-up, or by the first search, which still finds the answer), nor httpx (only the
    # CRM clients and the SDKs use it) or the Markdown parser (the index and the legal pages).
    assert result.stdout.split() == ["False"] * 7 + ["True", "True", "True"]


async def test_updates_posted_at_the_first_health_answer_are_processed_in_order(
    tmp_path: Path, fake_api: FakeBotAPI
) -> None:
    chat = 7001
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    env = _env(tmp_path, fake_api.base_url, database_url, TELEGRAM_MODE="webhook", TELEGRAM_WEBHOOK_SECRET=SECRET,
               LOG_LEVEL="INFO")
    port = _free_port()
    log = tmp_path / "serve.log"
    with child("serve", env, log, "--host", "127.0.0.1", "--port", str(port)):
        async with httpx.AsyncClient(timeout=10) as client:
            async def up() -> bool:
                try:
                    return (await client.get(f"http://127.0.0.1:{port}/api/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=START_TIMEOUT)
            for update in funnel(1, chat):
                response = await client.post(
                    f"http://127.0.0.1:{port}/telegram/webhook", json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                )
                assert response.json() == {"ok": True, "queued": True}
            await wait_for(lambda: len(first_replies(fake_api, chat)) == len(FUNNEL_REPLIES), timeout=START_TIMEOUT)
    assert first_replies(fake_api, chat) == FUNNEL_REPLIES
    lines = log.read_text().splitlines()

    def line_of(text: str) -> int:
        return next(n for n, line in enumerate(lines) if text in line)

    # The port answered before aiogram was loaded; the queue workers started after it was.
    assert line_of("Application startup complete") < line_of("adapters.telegram.service loaded in")
    assert line_of("adapters.telegram.service loaded in") < line_of("starting telegram-workers")
