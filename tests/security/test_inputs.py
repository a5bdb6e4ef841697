"""Hostile inputs get a clear 4xx with a reason, never a 500, and leave nothing odd in storage or logs.

Each case reproduces a finding of issue 20 (9 and 12): NUL bytes, deep JSON, ids outside Telegram's
ranges, Unicode look-alikes in user_id, chunked bodies over the limit, CSV formulas behind spaces,
initData dated in the future, right-to-left overrides in names, SQL parameters in tracebacks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from adapters.http.routers.admin_leads import neutralise
from adapters.storage.models import Lead, User
from adapters.wiring import Runtime, build_runtime
from agent.logging_setup import ContextFilter, Redactor
from tests.conftest import make_settings
from tests.crm_helpers import wait_for
from tests.security.conftest import serve_app
from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import SECRET, running_service, telegram_settings
from tests.webapp_helpers import PLAIN_TELEGRAM_ID, TEST_BOT_TOKEN, RecordingNotifier, sign_init_data

TOKEN = "assistant-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
BASIC = ("admin", "a-long-test-password")
WEBHOOK = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def tma(user: dict[str, Any] | None = None, *, auth_date: datetime | None = None) -> dict[str, str]:
    signed = sign_init_data(TEST_BOT_TOKEN, user=user or {"id": PLAIN_TELEGRAM_ID, "first_name": "Ольга"}, auth_date=auth_date)
    return {"Authorization": f"tma {signed}"}


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The whole API on each database (PostgreSQL refuses what SQLite stores, e.g. NUL)."""
    settings = make_settings(
        tmp_path, database_url=database_url, telegram_bot_token=TEST_BOT_TOKEN, assistant_api_token=TOKEN,
        startup_preflight_mode="off",
    )
    runtime = build_runtime(settings, notifier=RecordingNotifier())
    async with serve_app(settings, runtime) as client:
        yield client, runtime


def _lead(**fields: Any) -> dict[str, Any]:
    return {"name": "Ольга", "phone": "+7 916 123-45-67", "consent_personal_data": True, **fields}


async def test_nul_in_text_fields_is_422_with_the_field(stack: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = stack
    ask = await client.post("/api/assistant/ask", headers=BEARER, json={"message": "При\x00вет", "user_id": "crm-1"})
    lead = await client.post("/api/leads", headers=tma(), json=_lead(name="Оль\x00га"))
    note = await client.post("/api/leads", headers=tma(), json=_lead(goal="ОГЭ\x07"))
    for response, field in ((ask, "message"), (lead, "name"), (note, "goal")):
        assert response.status_code == 422, response.text
        assert response.json()["reason"] == "invalid_characters" and response.json()["field"] == field
    # An ordinary message with line breaks and tabs still goes through.
    fine = await client.post("/api/assistant/ask", headers=BEARER, json={"message": "Привет,\n9 класс\t", "user_id": "crm-1"})
    assert fine.status_code == 200, fine.text


async def test_nul_in_the_url_is_422_not_500(stack: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = stack
    app_path = await client.get("/app/%00")
    query = await client.get("/admin/leads?q=%00", auth=BASIC)
    brand = await client.get("/admin/conversations?brand=kmipt%00", auth=BASIC)
    for response in (app_path, query, brand):
        assert response.status_code == 422, response.text
        assert response.json()["reason"] == "invalid_characters"
    assert (await client.get("/admin/leads?q=%2B7916", auth=BASIC)).status_code == 200


async def test_admin_manager_note_with_nul_is_422(stack: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = stack
    created = await client.post("/api/leads", headers=tma(), json=_lead())
    assert created.status_code == 201, created.text
    lead_id = created.json()["lead_id"]
    response = await client.patch(f"/admin/leads/{lead_id}", auth=BASIC, json={"manager_note": "перезвонить\x00"})
    assert response.status_code == 422 and response.json()["field"] == "manager_note"


@pytest.mark.parametrize("user_id", ["ｃｒｍ７", "crm\u200b7", "клиент-7", "crm 7", "crm\u202e7"])
async def test_user_id_is_ascii_as_documented(stack: tuple[httpx.AsyncClient, Runtime], user_id: str) -> None:
    client, _ = stack
    response = await client.post("/api/assistant/ask", headers=BEARER, json={"message": "Привет", "user_id": user_id})
    assert response.status_code == 422 and response.json()["field"] == "user_id"


async def test_deep_json_is_400(stack: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = stack
    headers = {**BEARER, "content-type": "application/json"}
    huge = b"[" * 100_000 + b"]" * 100_000
    just_over = b'{"message": "hi", "user_id": "u", "x": ' + b"[" * 64 + b"]" * 64 + b"}"
    for body in (huge, just_over):
        response = await client.post("/api/assistant/ask", headers=headers, content=body)
        assert response.status_code == 400, response.text[:200]
        assert response.json() == {"ok": False, "reason": "json_too_deep", "max_depth": 64}
    # Brackets inside strings are text, not nesting.
    text = '{"message": "' + "[" * 200 + '", "user_id": "u"}'
    assert (await client.post("/api/assistant/ask", headers=headers, content=text.encode())).status_code == 200


async def test_chunked_body_over_one_mebibyte_is_413(stack: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = stack

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"message": "'
        for _ in range(17):
            yield b"a" * 65536
        yield b'", "user_id": "u"}'

    response = await client.post("/api/assistant/ask", headers={**BEARER, "content-type": "application/json"}, content=chunks())
    assert response.status_code == 413, response.text
    assert response.json()["reason"] == "body_too_large"


async def test_init_data_from_the_future_is_refused(stack: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = stack
    future = datetime.now(UTC) + timedelta(days=365)
    response = await client.get("/api/auth/whoami", headers=tma(auth_date=future))
    assert response.status_code == 401, response.text
    assert response.json()["reason"] == "invalid_init_data"


async def test_right_to_left_overrides_are_stripped_from_stored_names(stack: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = stack
    user = {"id": PLAIN_TELEGRAM_ID, "first_name": "Оль\u202eга", "username": "olga"}
    created = await client.post("/api/leads", headers=tma(user), json=_lead(name="Ива\u202eн\u2066 Петров"))
    assert created.status_code == 201, created.text
    async with runtime.db.session() as session:
        lead = (await session.exec(select(Lead))).one()
        stored_user = (await session.exec(select(User))).one()
    assert lead.name == "Иван Петров"
    assert stored_user.first_name == "Ольга"


@pytest.mark.parametrize("value", [" =1+1", "\u00a0=HYPERLINK(\"x\")", "\n=1", "  @SUM(A1)", "\t-1", "=1"])
def test_csv_neutralises_formulas_behind_spaces(value: str) -> None:
    assert neutralise(value).startswith("'")


def test_csv_keeps_plain_values() -> None:
    assert neutralise("Иван Петров") == "Иван Петров" and neutralise("+79161234567") == "'+79161234567"


async def test_logged_database_errors_do_not_carry_statement_values(runtime: Runtime) -> None:
    """A failed statement logged with its traceback (as the 500 handler and the queue workers log it)
    names no value it was sent with: PostgreSQL's own message repeats the failing row."""
    secret_phone = "+79169998877"
    with pytest.raises(sa.exc.DBAPIError) as failure:
        async with runtime.db.engine.begin() as conn:
            # A NOT NULL column left empty: fails on both databases after the values are bound.
            await conn.execute(sa.text("INSERT INTO users (identity, external_id) VALUES (:identity, NULL)"), {"identity": secret_phone})
    record = logging.LogRecord("test", logging.ERROR, __file__, 1, "unhandled error: %s", ("IntegrityError",), None)
    record.exc_info = (type(failure.value), failure.value, failure.value.__traceback__)
    ContextFilter(Redactor()).filter(record)
    assert "IntegrityError" in record.msg and "Traceback" in record.msg
    assert secret_phone not in record.msg


# ---------------------------------------------------------------- the webhook


@pytest.fixture
async def bot(tmp_path: Path, fake_api: FakeBotAPI, database_url: str):  # type: ignore[no-untyped-def]
    settings = telegram_settings(tmp_path, fake_api.base_url, database_url)
    async with running_service(settings, fake_api) as service:
        yield service


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 2**70},
        {"update_id": -5},
        updates.message(1, 2**60, "hi"),
        {"update_id": 2, "message": {"message_id": 2**64, "chat": {"id": 7}}},
    ],
)
async def test_webhook_numbers_outside_telegram_ranges_are_400(bot, update: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    response = await bot.client.post("/telegram/webhook", json=update, headers=WEBHOOK)
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "invalid_update"


async def test_webhook_accepts_supergroup_ids(bot) -> None:  # type: ignore[no-untyped-def]
    """Supergroup and forum chat ids are negative, -100 followed by ten digits: inside the range."""
    update = updates.message(3, 7, "hi")
    update["message"]["chat"] = {"id": -1001234567890, "type": "supergroup", "title": "Менеджеры"}
    response = await bot.client.post("/telegram/webhook", json=update, headers=WEBHOOK)
    assert response.status_code == 200 and response.json()["queued"] is True


async def test_webhook_deep_json_is_400(bot) -> None:  # type: ignore[no-untyped-def]
    body = b'{"update_id": 4, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await bot.client.post("/telegram/webhook", content=body, headers={**WEBHOOK, "content-type": "application/json"})
    assert response.status_code == 400 and response.json()["reason"] == "json_too_deep"


async def test_webhook_message_with_nul_is_answered_not_dead_lettered(bot, fake_api: FakeBotAPI) -> None:  # type: ignore[no-untyped-def]
    update = updates.message(5, 7005, "Здравствуйте\x00, 9 класс")
    update["message"]["from"]["first_name"] = "Ан\x00на"
    await bot.deliver(update)
    await bot.settle(5)
    async with bot.runtime.db.engine.connect() as conn:
        status = (await conn.execute(sa.text("SELECT status FROM telegram_updates WHERE update_id = 5"))).scalar()
        stored = (await conn.execute(sa.text("SELECT content FROM messages WHERE role = 'user'"))).scalars().all()
    assert status == "done"
    await wait_for(lambda: len(fake_api.sent_to(7005)) >= 1)
    assert stored == ["Здравствуйте, 9 класс"]
