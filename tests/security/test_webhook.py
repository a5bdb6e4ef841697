"""Webhook mode without a secret (issue 20, finding 6): the setWebhook helper makes and sets one, the
diagnostics never publish the path, strict preflight refuses to start, fail mode says it loudly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.http.app import PreflightFailed
from tests.conftest import make_settings, run_script
from tests.security.conftest import serve_app
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import TOKEN


async def _set_webhook(api: FakeBotAPI, **env: str) -> tuple[int, str]:
    done = await asyncio.to_thread(
        run_script, "set_webhook.py", "--base-url", "https://bot.example.org",
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=api.base_url, **env,
    )
    return done.returncode, done.stdout + done.stderr


async def test_set_webhook_generates_a_secret_when_none_is_configured(fake_api: FakeBotAPI) -> None:
    code, output = await _set_webhook(fake_api, TELEGRAM_WEBHOOK_PATH="/tg/hook")
    assert code == 0, output
    [call] = fake_api.calls_of("setWebhook")
    secret = call.params["secret_token"]
    assert call.params["url"] == "https://bot.example.org/tg/hook"
    assert len(secret) >= 32 and secret.replace("-", "").replace("_", "").isalnum()
    assert f"TELEGRAM_WEBHOOK_SECRET={secret}" in output and output.rstrip().endswith("PASS: webhook set")
    assert TOKEN not in output


async def test_set_webhook_keeps_a_configured_secret(fake_api: FakeBotAPI) -> None:
    code, output = await _set_webhook(fake_api, TELEGRAM_WEBHOOK_SECRET="configured-secret_123")
    assert code == 0, output
    assert fake_api.calls_of("setWebhook")[0].params["secret_token"] == "configured-secret_123"
    assert "configured-secret_123" not in output


async def test_set_webhook_reports_telegrams_refusal(fake_api: FakeBotAPI) -> None:
    fake_api.fail_next("setWebhook", 400, "Bad Request: bad webhook: HTTPS url must be provided for webhook")
    code, output = await _set_webhook(fake_api)
    assert code == 1 and "FAIL: Telegram refused setWebhook" in output
    assert "TELEGRAM_WEBHOOK_SECRET=" not in output


async def test_diagnostics_never_show_the_webhook_path(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = make_settings(
        tmp_path, telegram_bot_token=TOKEN, telegram_mode="webhook", telegram_webhook_path="/tg/hook-7f3a9",
        telegram_api_base_url=fake_api.base_url, startup_preflight_mode="off",
    )
    async with serve_app(settings) as client:
        body = (await client.get("/api/runtime/diagnostics")).text
    assert "hook-7f3a9" not in body
    assert '"telegram_webhook_authenticated":false' in body.replace(" ", "")


async def test_strict_preflight_refuses_webhook_mode_without_a_secret(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, telegram_bot_token=TOKEN, telegram_mode="webhook", telegram_api_base_url="http://127.0.0.1:9",
        startup_preflight_mode="strict", admin_pass="a-long-test-password",
    )
    with pytest.raises(PreflightFailed, match="telegram_webhook_secret"):
        async with serve_app(settings):
            pass


async def test_fail_mode_starts_but_says_so_loudly(
    tmp_path: Path, fake_api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path, telegram_bot_token=TOKEN, telegram_mode="webhook", telegram_api_base_url=fake_api.base_url,
        startup_preflight_mode="fail",
    )
    async with serve_app(settings) as client:
        assert (await client.get("/api/health")).status_code == 200
    assert "WEBHOOK MODE WITHOUT TELEGRAM_WEBHOOK_SECRET: anyone can post forged updates" in caplog.text
    assert "scripts/set_webhook.py" in caplog.text
