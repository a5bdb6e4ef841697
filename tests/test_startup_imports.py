"""Start-up stays quick: without OPENAI_API_KEY / TELEGRAM_BOT_TOKEN the openai SDK and aiogram are
never imported (0.4-0.8 s and ~0.3 s of `make run`'s time to a healthy /api/health; bench/startup.py).

Each case runs in a fresh interpreter, as `make run` does: import the CLI, build the app, run its
lifespan (migrations, preflight), answer /api/health and one assistant turn, then list what got imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LAZY = ("openai", "aiogram")
# Not needed to answer health: Alembic (a new database is created from the models' metadata) and the
# knowledge index's bm25s and numpy (built by the first search, or after start-up by `serve`).
LATER = ("alembic", "bm25s", "numpy")

SCRIPT = """
import asyncio, json, sys

import httpx
from asgi_lifespan import LifespanManager

import adapters.main  # what `python -m adapters.main serve` imports before building the app
from adapters.http.app import create_app
from agent.settings import load_settings

LAZY = %r
LATER = %r


def imported(names):
    return sorted({name.split(".")[0] for name in sys.modules} & set(names))


async def main():
    app = create_app(load_settings())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            health = (await client.get("/api/health")).status_code
            at_health = imported(LAZY + LATER)
            ask = await client.post(
                "/api/assistant/ask",
                json={"user_id": "u1", "message": "Сколько стоит подготовка к ЕГЭ?"},
                headers={"Authorization": "Bearer startup-test-token"},
            )
    print(json.dumps({"health": health, "ask": ask.status_code, "engine": ask.json().get("engine"),
                      "at_health": at_health, "imported": imported(LAZY + LATER)}))


asyncio.run(main())
""" % (LAZY, LATER)


def start(tmp_path: Path, **env: str) -> dict[str, object]:
    """Start the app in a fresh interpreter with only ``env`` configured (no .env: cwd is empty)."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO),
            "PERSISTENT_DATA_PATH": str(tmp_path / "data"),
            "ASSISTANT_API_TOKEN": "startup-test-token",
            "LOG_LEVEL": "WARNING",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_default_start_imports_neither_the_openai_sdk_nor_aiogram(tmp_path: Path) -> None:
    outcome = start(tmp_path)
    assert outcome == {"health": 200, "ask": 200, "engine": "offline", "at_health": [], "imported": []}


def test_a_configured_key_still_wires_the_model_client(tmp_path: Path) -> None:
    # The positive control: the same probe sees the SDK once a key is set (nothing is sent at start-up;
    # the turn's model call fails fast on a closed local port and the offline policy answers).
    outcome = start(tmp_path, OPENAI_API_KEY="sk-test-not-a-real-key", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
                    OPENAI_MAX_RETRIES="0")
    assert outcome["health"] == 200 and outcome["ask"] == 200
    assert outcome["imported"] == ["openai"]
