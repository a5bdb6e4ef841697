"""The Mini App API over HTTP: whoami, legal pages, POST /api/leads, one initData dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlmodel import select

from adapters.http.app import create_app
from adapters.miniapp_checks import miniapp_checks
from adapters.storage.models import ConsentRecord, Lead
from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from tests.clock import Clock
from tests.conftest import make_settings
from tests.test_initdata import THIRD_PARTY_AUTH_DATE, THIRD_PARTY_BOT_ID, THIRD_PARTY_VALID
from tests.webapp_helpers import (
    ADMIN_TELEGRAM_ID,
    PLAIN_TELEGRAM_ID,
    TEST_BOT_TOKEN,
    RecordingNotifier,
    sign_init_data,
)

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def tma(user_id: int = PLAIN_TELEGRAM_ID, *, token: str = TEST_BOT_TOKEN, age: timedelta = timedelta(minutes=1)) -> str:
    return sign_init_data(token, user={"id": user_id, "first_name": "Ольга", "username": "olga"}, auth_date=NOW - age)


async def _serve(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings, runtime=runtime)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def _miniapp(tmp_path: Path, notifier: RecordingNotifier) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = make_settings(
        tmp_path,
        telegram_bot_token=TEST_BOT_TOKEN,
        admin_miniapp_enabled=True,
        admin_telegram_ids=[ADMIN_TELEGRAM_ID],
    )
    runtime = build_runtime(settings, clock=Clock(NOW), notifier=notifier)
    async for client in _serve(runtime):
        yield client, runtime


@pytest.fixture
async def miniapp(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """SQLite only: these routes add no SQL of their own (the admin tests cover both backends)."""
    async for served in _miniapp(tmp_path, RecordingNotifier()):
        yield served


async def test_whoami_outside_telegram(miniapp: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = miniapp
    response = await client.get("/api/auth/whoami")
    assert response.status_code == 200
    assert response.json() == {"ok": False, "reason": "not_in_telegram"}


@pytest.mark.parametrize("header", ["authorization", "x-tg-init-data"])
async def test_whoami_valid_from_either_header(miniapp: tuple[httpx.AsyncClient, Runtime], header: str) -> None:
    client, _ = miniapp
    raw = tma(ADMIN_TELEGRAM_ID)
    value = f"tma {raw}" if header == "authorization" else raw
    body = (await client.get("/api/auth/whoami", headers={header: value})).json()
    assert body["ok"] is True and body["is_admin"] is True
    assert body["user"]["id"] == ADMIN_TELEGRAM_ID and body["user"]["first_name"] == "Ольга"
    assert body["user"]["username"] == "olga"


async def test_whoami_plain_user_is_not_admin(miniapp: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = miniapp
    body = (await client.get("/api/auth/whoami", headers={"Authorization": f"tma {tma()}"})).json()
    assert body["ok"] is True and body["is_admin"] is False


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (tma(token="999:OTHER"), "invalid_init_data"),
        (tma() + "x", "invalid_init_data"),
        ("garbage", "invalid_init_data"),
        (tma(age=timedelta(days=1, seconds=1)), "expired"),
    ],
)
async def test_whoami_rejects_bad_init_data(miniapp: tuple[httpx.AsyncClient, Runtime], raw: str, reason: str) -> None:
    client, _ = miniapp
    response = await client.get("/api/auth/whoami", headers={"Authorization": f"tma {raw}"})
    assert response.status_code == 401
    assert response.json() == {"ok": False, "reason": reason}


async def test_third_party_signature_used_without_bot_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, webapp_bot_id=THIRD_PARTY_BOT_ID)
    clock = Clock(THIRD_PARTY_AUTH_DATE + timedelta(minutes=3))
    async for client in _serve(build_runtime(settings, clock=clock)):
        ok = await client.get("/api/auth/whoami", headers={"X-Tg-Init-Data": THIRD_PARTY_VALID})
        clock.now = THIRD_PARTY_AUTH_DATE + timedelta(days=2)
        expired = await client.get("/api/auth/whoami", headers={"X-Tg-Init-Data": THIRD_PARTY_VALID})
    assert ok.status_code == 200 and ok.json()["user"]["id"] == 279058397
    assert expired.status_code == 401 and expired.json()["reason"] == "expired"


async def test_init_data_unverifiable_without_token_or_bot_id(tmp_path: Path) -> None:
    async for client in _serve(build_runtime(make_settings(tmp_path))):
        response = await client.get("/api/auth/whoami", headers={"X-Tg-Init-Data": tma()})
    assert response.status_code == 503 and response.json()["reason"] == "telegram_not_configured"


async def test_legal_documents(miniapp: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = miniapp
    consent = await client.get("/api/legal/kmipt/consent")
    privacy = await client.get("/api/legal/kmipt/privacy")
    assert consent.status_code == 200 and "<h1>Согласие на обработку персональных данных</h1>" in consent.text
    assert consent.headers["x-document-version"] == "2026-11-01"
    assert privacy.status_code == 200 and "Политика обработки персональных данных" in privacy.text
    for path in ("/api/legal/kmipt/secrets", "/api/legal/nobrand/consent", "/api/legal/..%2Fkmipt/consent"):
        assert (await client.get(path)).status_code == 404


LEAD = {
    "name": "Ольга",
    "phone": "8 (999) 123-45-67",
    "consent_personal_data": True,
    "consent_marketing": False,
    "grade": 10,
    "goal": "ege",
    "subject": "math",
    "format": "online",
    "program_ids": ["ege-math-10-11-offline"],
}


async def test_lead_from_miniapp_is_stored_with_consent_and_confirmed(
    miniapp: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, runtime = miniapp
    response = await client.post("/api/leads", json=LEAD, headers={"Authorization": f"tma {tma()}"})
    assert response.status_code == 201, response.text
    lead_id = response.json()["lead_id"]
    assert response.json()["ok"] is True
    async with runtime.db.session() as session:
        lead = await session.get(Lead, lead_id)
        consents = (await session.exec(select(ConsentRecord))).all()
    assert lead is not None and lead.phone == "+79991234567" and lead.channel == "miniapp" and lead.source == "miniapp"
    assert lead.profile == {"grade": 10, "goal": "ege", "subject": "math", "format": "online"}
    assert lead.program_ids == ["ege-math-10-11-offline"]
    assert {(c.kind, c.granted, c.telegram_id, c.channel, c.text_version) for c in consents} == {
        ("personal_data", True, PLAIN_TELEGRAM_ID, "miniapp", "2026-11-01"),
        ("marketing", False, PLAIN_TELEGRAM_ID, "miniapp", "2026-11-01"),
    }
    notifier = runtime.notifier
    assert isinstance(notifier, RecordingNotifier)
    assert notifier.user_messages and notifier.user_messages[0][0] == PLAIN_TELEGRAM_ID
    assert "Ольга" in notifier.user_messages[0][1]


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"consent_personal_data": False}, "consent_required", "consent_personal_data"),
        ({"phone": "12345"}, "invalid_request", "phone"),
        ({"name": "   "}, "invalid_request", "name"),
        ({"grade": 12}, "invalid_request", "grade"),
        ({"brand": "nosuchbrand"}, "invalid_request", "brand"),
    ],
)
async def test_lead_rejections_name_the_field(
    miniapp: tuple[httpx.AsyncClient, Runtime], change: dict[str, object], reason: str, field: str
) -> None:
    client, runtime = miniapp
    response = await client.post("/api/leads", json={**LEAD, **change}, headers={"Authorization": f"tma {tma()}"})
    assert response.status_code == 422
    assert response.json()["reason"] == reason and response.json()["field"] == field
    assert await runtime.leads.count() == 0


async def test_same_lead_within_a_day_is_not_stored_twice(miniapp: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = miniapp
    headers = {"Authorization": f"tma {tma()}"}
    first = await client.post("/api/leads", json=LEAD, headers=headers)
    again = await client.post("/api/leads", json={**LEAD, "phone": "+7 999 123 45 67"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["lead_id"] == first.json()["lead_id"] and again.json()["duplicate"] is True
    assert first.json()["confirmation_sent"] is True and again.json()["confirmation_sent"] is False
    assert again.json()["programs"][0]["id"] == "ege-math-10-11-offline" and again.json()["programs"][0]["title"]
    assert await runtime.leads.count() == 1
    assert isinstance(runtime.notifier, RecordingNotifier) and len(runtime.notifier.user_messages) == 1

    second_child = {**LEAD, "grade": 6, "goal": "olympiad", "subject": "math", "format": "offline", "program_ids": []}
    other = await client.post("/api/leads", json=second_child, headers=headers)
    assert other.json()["duplicate"] is False and other.json()["lead_id"] != first.json()["lead_id"]
    assert other.json()["profile"] == {"grade": 6, "goal": "olympiad", "subject": "math", "format": "offline"}
    assert await runtime.leads.count() == 2


async def test_confirmation_not_claimed_when_the_bot_could_not_write(tmp_path: Path) -> None:
    class BlockedBot(RecordingNotifier):
        async def notify_user(self, telegram_user_id: int, text: str) -> None:
            raise RuntimeError("Forbidden: bot was blocked by the user")

    async for client, runtime in _miniapp(tmp_path, BlockedBot()):
        response = await client.post("/api/leads", json=LEAD, headers={"Authorization": f"tma {tma()}"})
        assert response.status_code == 201 and response.json()["confirmation_sent"] is False
        assert await runtime.leads.count() == 1


async def test_chat_history_for_a_reopened_app(miniapp: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = miniapp
    headers = {"Authorization": f"tma {tma()}"}
    empty = await client.get("/api/assistant/history", headers=headers)
    assert empty.status_code == 200 and empty.json()["messages"] == []
    assert await runtime.leads.count() == 0
    for body in ({"message": "Здравствуйте, сыну 9 класс"}, {"choice": "goal:oge"}, {"choice": "handoff"},
                 {"message": "ау"}, {"message": "есть кто?"}):
        assert (await client.post("/api/assistant/ask", json=body, headers=headers)).status_code == 200
    messages = (await client.get("/api/assistant/history", headers=headers)).json()["messages"]
    roles = [m["role"] for m in messages]
    assert roles[:2] == ["user", "assistant"] and messages[0]["text"] == "Здравствуйте, сыну 9 класс"
    assert all(m["text"].strip() for m in messages)  # the silent turn (text "") is not drawn
    assert messages[-1]["role"] == "user" and messages[-1]["text"] == "есть кто?"
    handoff = next(m for m in messages if "handoff" in m["actions"])
    assert "в чате с ботом в Telegram" in handoff["text"] and "ответит здесь" not in handoff["text"]
    other = await client.get("/api/assistant/history", headers={"Authorization": f"tma {tma(ADMIN_TELEGRAM_ID)}"})
    assert other.json()["messages"] == []  # one user's history only
    assert (await client.get("/api/assistant/history")).status_code == 401
    assert (await client.get("/api/assistant/history?brand=nope", headers=headers)).status_code == 422


async def test_lead_needs_init_data(miniapp: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = miniapp
    outside = await client.post("/api/leads", json=LEAD)
    forged = await client.post("/api/leads", json=LEAD, headers={"Authorization": f"tma {tma(token='1:X')}"})
    assert outside.status_code == 401 and outside.json()["reason"] == "not_in_telegram"
    assert forged.status_code == 401 and forged.json()["reason"] == "invalid_init_data"
    assert await runtime.leads.count() == 0


async def test_preflight_reports_miniapp_setup(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "admin").mkdir(parents=True)
    (dist / "index.html").write_text("user")
    (dist / "admin" / "index.html").write_text("admin")
    ready = build_runtime(make_settings(tmp_path, webapp_dist_path=str(dist), telegram_bot_token=TEST_BOT_TOKEN,
                                        admin_miniapp_enabled=True, admin_telegram_ids=[ADMIN_TELEGRAM_ID],
                                        user_webapp_url="https://example.org/app"))
    bare = build_runtime(make_settings(tmp_path, admin_miniapp_enabled=True, admin_webapp_url="http://x/admin/miniapp"))
    try:
        assert [(c.name, c.level.value) for c in await miniapp_checks(ready)] == [("webapp_build", "ok")]
        assert {c.name for c in await miniapp_checks(bare) if c.level.value == "warning"} == {
            "webapp_build", "webapp_initdata", "admin_miniapp", "webapp_url",
        }
    finally:
        await ready.close()
        await bare.close()


async def test_a_form_lead_is_known_to_the_chat(miniapp: tuple[httpx.AsyncClient, Runtime]) -> None:
    """After the Mini App form, the chat (Mini App or Telegram) neither asks for the phone again nor
    creates a second lead, and stops qualifying."""
    client, runtime = miniapp
    headers = {"Authorization": f"tma {tma()}"}
    lead_id = (await client.post("/api/leads", json=LEAD, headers=headers)).json()["lead_id"]
    for body in ({"message": "запишите на пробное"}, {"choice": "contact:start"}, {"message": "Сколько стоит ЕГЭ по физике?"}):
        reply = (await client.post("/api/assistant/ask", json=body, headers=headers)).json()
        payloads = [q["payload"] for q in reply["quick_replies"]]
        assert "consent:yes" not in payloads and "ask_contact" not in reply["actions"], (body, reply)
        assert not any(p.startswith("grade:") for p in payloads), (body, payloads)
    assert await runtime.leads.count() == 1
    state = await runtime.store.load("telegram", str(PLAIN_TELEGRAM_ID), "kmipt")
    assert state.flow.get("lead_id") == lead_id and state.profile.phone == "+79991234567"
