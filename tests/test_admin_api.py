"""The admin API on both storage backends: auth (Basic or an allowed admin's initData), leads, CSV,
conversations, release, dead Telegram updates and the funnel."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.http.app import create_app
from adapters.storage.models import Conversation, Lead, Message, ModelUsage, TelegramUpdate, User
from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from tests.clock import Clock
from tests.conftest import make_settings
from tests.webapp_helpers import ADMIN_TELEGRAM_ID, PLAIN_TELEGRAM_ID, TEST_BOT_TOKEN, sign_init_data

NOW = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)
BASIC = ("admin", "a-long-test-password")
DAY1, DAY2 = datetime(2026, 9, 1, 10, tzinfo=UTC), datetime(2026, 9, 2, 10, tzinfo=UTC)


def init_data(user_id: int) -> str:
    return sign_init_data(TEST_BOT_TOKEN, user={"id": user_id, "first_name": "Админ"}, auth_date=NOW)


async def seed(runtime: Runtime) -> dict[str, int]:
    """Three conversations over two days and two sources; two leads, one delivered to the CRM. Messages
    carry no turn meta: what the service writes is tested through the service in test_admin_truth.py."""
    ids: dict[str, int] = {}
    async with runtime.db.session() as session:
        anna = User(identity="telegram", external_id="501", first_name="Анна", username="anna", source="vk_ads")
        boris = User(identity="telegram", external_id="502", first_name="Борис", source="vk_ads")
        vera = User(identity="telegram", external_id="503", first_name="Вера")
        session.add_all([anna, boris, vera])
        await session.flush()
        talk_a = Conversation(user_id=anna.id, brand="kmipt", created_at=DAY1, last_message_at=DAY1,
                              profile={"grade": 10, "goal": "ege", "subject": "math"})
        talk_b = Conversation(user_id=boris.id, brand="kmipt", created_at=DAY1, last_message_at=DAY2,
                              profile={"grade": 9}, human_mode_until=NOW + timedelta(hours=5),
                              handoff_reason="просит скидку")
        talk_v = Conversation(user_id=vera.id, brand="kmipt", created_at=DAY2, last_message_at=DAY2,
                              profile={"grade": 5, "goal": "olympiad"})
        session.add_all([talk_a, talk_b, talk_v])
        await session.flush()
        session.add_all([
            Message(conversation_id=talk_a.id, role="user", channel="telegram", content="ЕГЭ по математике", created_at=DAY1),
            Message(conversation_id=talk_a.id, role="assistant", channel="telegram", content="Вот программы",
                    created_at=DAY1 + timedelta(minutes=1)),
            Message(conversation_id=talk_b.id, role="user", channel="telegram", content="Хочу поговорить с менеджером", created_at=DAY2),
            Message(conversation_id=talk_v.id, role="assistant", channel="telegram", content="Олимпиады",
                    created_at=DAY2),
        ])
        session.add_all([
            Lead(user_id=anna.id, conversation_id=talk_a.id, brand="kmipt", channel="telegram", source="vk_ads",
                 name="Анна", phone="+79991112233", crm_status="delivered", created_at=DAY1 + timedelta(hours=1),
                 profile={"grade": 10, "goal": "ege"}, program_ids=["ege-math"]),
            Lead(user_id=vera.id, conversation_id=talk_v.id, brand="kmipt", channel="miniapp", source="miniapp",
                 name="=HYPERLINK(\"http://evil\")", phone="+79995556677", status="contacted", created_at=DAY2,
                 manager_note="перезвонить вечером"),
            Lead(brand="demo", channel="api", name="Гость", phone="+79990000000", created_at=DAY2 - timedelta(days=5)),
        ])
        session.add_all([
            ModelUsage(conversation_id=talk_a.id, model="gpt-4.1", input_tokens=900, output_tokens=300, total_tokens=1200),
            ModelUsage(conversation_id=talk_v.id, model="gpt-4.1", input_tokens=500, output_tokens=100, total_tokens=600),
        ])
        session.add_all([
            TelegramUpdate(update_id=77, chat_id=501, payload='{"update_id": 77}', status="dead", attempts=5,
                           last_error="RuntimeError: boom"),
            TelegramUpdate(update_id=78, chat_id=502, payload='{"update_id": 78}', status="done"),
        ])
        await session.commit()
        ids.update(a=talk_a.id, b=talk_b.id, v=talk_v.id)  # type: ignore[arg-type]
    return ids


@pytest.fixture
async def admin(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, dict[str, int]]]:
    settings = make_settings(tmp_path, database_url=database_url, telegram_bot_token=TEST_BOT_TOKEN,
                             admin_miniapp_enabled=True, admin_telegram_ids=[ADMIN_TELEGRAM_ID])
    runtime = build_runtime(settings, clock=Clock(NOW))
    app = create_app(settings, runtime=runtime)
    async with LifespanManager(app) as manager:
        ids = await seed(runtime)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", auth=BASIC) as client:
            yield client, runtime, ids


Admin = tuple[httpx.AsyncClient, Runtime, dict[str, int]]


async def test_admin_auth_basic_or_allowed_init_data(admin: Admin) -> None:
    client, _, _ = admin
    anonymous = await client.get("/admin/leads", auth=None)
    wrong = await client.get("/admin/leads", auth=("admin", "nope"))
    allowed = await client.get("/admin/leads", auth=None, headers={"X-Tg-Init-Data": init_data(ADMIN_TELEGRAM_ID)})
    other = await client.get("/admin/leads", auth=None, headers={"X-Tg-Init-Data": init_data(PLAIN_TELEGRAM_ID)})
    forged = await client.get("/admin/leads", auth=None, headers={"X-Tg-Init-Data": init_data(ADMIN_TELEGRAM_ID) + "0"})
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
    assert wrong.status_code == 401
    assert allowed.status_code == 200 and allowed.json()["total"] == 3
    assert other.status_code == 403 and other.json()["reason"] == "not_an_admin"
    assert forged.status_code == 401 and forged.json()["reason"] == "invalid_init_data"


async def test_admin_init_data_refused_when_miniapp_disabled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, telegram_bot_token=TEST_BOT_TOKEN, admin_telegram_ids=[ADMIN_TELEGRAM_ID])
    runtime = build_runtime(settings, clock=Clock(NOW))
    app = create_app(settings, runtime=runtime)
    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            response = await client.get("/admin/leads", headers={"X-Tg-Init-Data": init_data(ADMIN_TELEGRAM_ID)})
    assert response.status_code == 403 and response.json()["reason"] == "admin_miniapp_disabled"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["=HYPERLINK(\"http://evil\")", "Анна", "Гость"]),
        ("status=contacted", ["=HYPERLINK(\"http://evil\")"]),
        ("source=vk_ads", ["Анна"]),
        ("brand=demo", ["Гость"]),
        ("date_from=2026-09-01&date_to=2026-09-01", ["Анна"]),
        ("date_from=2026-09-02", ["=HYPERLINK(\"http://evil\")"]),
        ("q=Анна", ["Анна"]),
        ("q=8 999 111-22-33", ["Анна"]),
        ("q=вечером", ["=HYPERLINK(\"http://evil\")"]),
    ],
)
async def test_lead_filters(admin: Admin, query: str, names: list[str]) -> None:
    client, _, _ = admin
    body = (await client.get(f"/admin/leads?{query}")).json()
    assert body["ok"] is True
    assert [item["name"] for item in body["items"]] == names
    assert body["total"] == len(names)


async def test_lead_pagination_and_bad_filters(admin: Admin) -> None:
    client, _, _ = admin
    first = (await client.get("/admin/leads?per_page=2&page=1")).json()
    second = (await client.get("/admin/leads?per_page=2&page=2")).json()
    assert first["total"] == second["total"] == 3
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in second["items"]})
    for bad in ("status=won", "date_from=2026-09-05&date_to=2026-09-01", "per_page=1000", "date_from=yesterday"):
        response = await client.get(f"/admin/leads?{bad}")
        assert response.status_code == 422, bad


async def test_patch_lead_status_and_note(admin: Admin) -> None:
    client, runtime, _ = admin
    lead_id = (await client.get("/admin/leads?q=Анна")).json()["items"][0]["id"]
    response = await client.patch(f"/admin/leads/{lead_id}", json={"status": "trial", "manager_note": "пробное в среду"})
    assert response.status_code == 200
    assert response.json()["lead"]["status"] == "trial"
    stored = await runtime.leads.get(lead_id)
    assert stored is not None and stored.status == "trial" and stored.manager_note == "пробное в среду"
    assert (await client.patch(f"/admin/leads/{lead_id}", json={"status": "won"})).status_code == 422
    assert (await client.patch(f"/admin/leads/{lead_id}", json={})).status_code == 422
    assert (await client.patch("/admin/leads/999999", json={"status": "lost"})).status_code == 404
    assert (await client.patch(f"/admin/leads/{lead_id}", json={"status": "lost"}, auth=None)).status_code == 401


async def test_leads_csv_for_excel(admin: Admin) -> None:
    client, _, _ = admin
    response = await client.get("/admin/leads.csv?brand=kmipt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    raw = response.content.decode("utf-8")
    assert raw.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(raw[1:]), delimiter=";"))
    header, *data = rows
    assert header[:3] == ["id", "created_at", "brand"] and len(data) == 2
    by_name = {row[header.index("name")]: row for row in data}
    assert "'=HYPERLINK(\"http://evil\")" in by_name  # formula neutralised
    anna = by_name["Анна"]
    assert anna[header.index("phone")] == "'+79991112233"  # a leading + is a formula to Excel too
    assert anna[header.index("grade")] == "10" and anna[header.index("program_ids")] == "ege-math"


async def test_conversations_list_transcript_and_release(admin: Admin) -> None:
    client, runtime, ids = admin
    listing = (await client.get("/admin/conversations")).json()
    assert listing["total"] == 3
    by_id = {item["id"]: item for item in listing["items"]}
    assert by_id[ids["b"]]["in_human_mode"] is True and by_id[ids["b"]]["handoff_reason"] == "просит скидку"
    assert by_id[ids["a"]]["in_human_mode"] is False
    assert by_id[ids["a"]]["last_message"]["text"] == "Вот программы"
    assert by_id[ids["a"]]["user"]["username"] == "anna"
    handoffs = (await client.get("/admin/conversations?handoff=true")).json()
    assert [item["id"] for item in handoffs["items"]] == [ids["b"]]

    transcript = (await client.get(f"/admin/conversations/{ids['a']}")).json()
    assert [m["role"] for m in transcript["messages"]] == ["user", "assistant"]
    assert transcript["messages"][1]["tool_calls"] == [] and transcript["messages"][1]["cards"] == []

    released = await client.post(f"/admin/conversations/{ids['b']}/release")
    assert released.status_code == 200 and released.json()["in_human_mode"] is False
    stored = await runtime.conversations.get(ids["b"])
    assert stored is not None and stored.human_mode_until is None and stored.handoff_reason is None
    after = (await client.get(f"/admin/conversations/{ids['b']}")).json()
    assert after["conversation"]["in_human_mode"] is False
    assert (await client.post("/admin/conversations/999999/release")).status_code == 404
    assert (await client.get("/admin/conversations/999999")).status_code == 404
    for huge in ("/admin/conversations/9223372036854775808", "/admin/conversations/2147483648/release"):
        response = await (client.get(huge) if not huge.endswith("release") else client.post(huge))
        assert response.status_code == 422, huge  # beyond a PostgreSQL integer id: refused, not a 500


async def test_dead_telegram_updates_listed(admin: Admin) -> None:
    client, _, _ = admin
    body = (await client.get("/admin/telegram/dead-updates")).json()
    assert body["total"] == 1
    assert body["items"][0]["update_id"] == 77 and body["items"][0]["last_error"] == "RuntimeError: boom"


async def test_funnel_by_day_and_source(admin: Admin) -> None:
    client, _, _ = admin
    body = (await client.get("/admin/funnel?date_from=2026-09-01&date_to=2026-09-10&brand=kmipt")).json()
    assert body["totals"] == {
        "conversations": 3, "qualified": 2, "programs_shown": 2, "contact_left": 2, "crm_delivered": 1,
        "tokens": 1800, "tokens_per_lead": 900,
    }
    day1, day2 = body["by_day"]
    assert (day1["day"], day1["conversations"], day1["qualified"], day1["contact_left"], day1["crm_delivered"]) == (
        "2026-09-01", 2, 1, 1, 1,
    )
    assert day1["tokens_per_lead"] == 1200
    assert (day2["day"], day2["conversations"], day2["programs_shown"], day2["contact_left"]) == ("2026-09-02", 1, 1, 1)
    sources = {row["source"]: row for row in body["by_source"]}
    assert sources["vk_ads"]["conversations"] == 2 and sources["vk_ads"]["contact_left"] == 1
    assert sources["(direct)"]["conversations"] == 1
    default_range = (await client.get("/admin/funnel")).json()
    assert default_range["date_to"] == "2026-09-10" and default_range["date_from"] == "2026-08-12"
    assert (await client.get("/admin/funnel?date_from=2025-01-01&date_to=2026-09-01")).status_code == 422
    for query in ("date_to=0001-01-01", "date_to=9999-12-31", "date_from=0001-01-01&date_to=0001-01-02"):
        far = await client.get(f"/admin/funnel?{query}")  # schema fuzzing found a 500 (date overflow)
        assert far.status_code == 422 and far.json()["ok"] is False, query
    assert (await client.get("/admin/leads?date_to=9999-12-31")).status_code == 422


async def test_csv_download_link_for_the_admin_mini_app(admin: Admin) -> None:
    """Inside Telegram the download opens in the phone's browser: a signed link valid for minutes."""
    client, runtime, _ = admin
    headers = {"X-Tg-Init-Data": init_data(ADMIN_TELEGRAM_ID)}
    issued = await client.post("/admin/leads.csv/link?status=contacted&brand=", auth=None, headers=headers)
    assert issued.status_code == 200 and issued.json()["expires_in"] == 300
    url = issued.json()["url"]
    assert url.startswith("/admin/leads.csv/signed?") and "status=contacted" in url
    download = await client.get(url, auth=None)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 2  # the header and the one contacted lead: the filter travelled with the link
    widened = url.replace("status=contacted", "status=new")
    assert (await client.get(widened, auth=None)).status_code == 403  # the filter is signed too
    assert (await client.get(url + "0", auth=None)).status_code == 403
    refused = await client.post("/admin/leads.csv/link", auth=None, headers={"X-Tg-Init-Data": init_data(PLAIN_TELEGRAM_ID)})
    assert refused.status_code == 403
    runtime.clock.now = NOW + timedelta(minutes=6)  # type: ignore[attr-defined]
    expired = await client.get(url, auth=None)
    assert expired.status_code == 403 and expired.json()["reason"] == "link_expired_or_invalid"
