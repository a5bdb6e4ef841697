"""The admin's numbers come from what the service really stores: dialogs go through the real assistant
(the model faked at the HTTP seam, the offline policy, the Mini App's POST /api/leads), then the admin
API reads the transcript and the funnel. No seeded message rows: the turn meta is the service's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx
from asgi_lifespan import LifespanManager

from adapters.http.app import create_app
from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from agent.catalog import SearchCriteria
from tests import openai_fakes as fake
from tests.assistant_helpers import Chat, FakeCRM, RecordingNotifier, quick_llm
from tests.conftest import make_settings
from tests.webapp_helpers import TEST_BOT_TOKEN, sign_init_data

BASIC = ("admin", "a-long-test-password")
STAGES = ("conversations", "qualified", "programs_shown", "contact_left", "crm_delivered")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = make_settings(tmp_path, openai_api_key="sk-test", openai_max_retries=1, telegram_bot_token=TEST_BOT_TOKEN)
    runtime = build_runtime(settings, llm=quick_llm(settings), crm=FakeCRM(), notifier=RecordingNotifier())
    await runtime.db.migrate()
    app = create_app(settings, runtime=runtime)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", auth=BASIC) as client:
            yield client, runtime
    await runtime.close()


async def test_transcript_and_funnel_from_real_dialogs(served: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = served
    assert runtime.assistant is not None
    found = runtime.catalog.search("kmipt", SearchCriteria(grade=11, goal="ege", subject="math"), today=runtime.assistant.today())
    program = found.items[0]
    with respx.mock(base_url=fake.BASE_URL, assert_all_called=False) as api:
        api.post("/responses").mock(side_effect=[
            fake.response(fake.function_call("catalog_search", {"grade": 11, "goal": "ege", "subject": "math", "format": None})),
            fake.response(fake.answer("Вот курс, который подходит.", program_ids=[program.id])),
        ])
        model_chat = Chat(runtime, user_id="9001")
        shown = await model_chat.send(text="Дочь в 11 классе, нужна математика к ЕГЭ")
    assert [card.id for card in shown.cards] == [program.id]

    # The offline funnel: four buttons, programs shown as cards (the model is not asked for choices).
    offline_chat = Chat(runtime, user_id="9002")
    for choice in ("grade:9", "goal:oge", "subject:math", "format:online"):
        last = await offline_chat.send(choice=choice)
    assert last.cards

    await Chat(runtime, user_id="9003").send(text="Добрый день", start=True)  # only greeted

    init_data = sign_init_data(TEST_BOT_TOKEN, user={"id": 9004, "first_name": "Ольга"})
    lead = {"name": "Ольга", "phone": "+7 916 555-44-33", "consent_personal_data": True, "grade": 6, "goal": "olympiad"}
    created = await client.post("/api/leads", json=lead, headers={"Authorization": f"tma {init_data}"}, auth=None)
    assert created.status_code == 201, created.text

    listing = (await client.get("/admin/conversations")).json()
    users = {item["user"]["external_id"]: item for item in listing["items"]}
    assert set(users) == {"9001", "9002", "9003"}  # the Mini App lead's empty conversation is not listed
    transcript = (await client.get(f"/admin/conversations/{users['9001']['id']}")).json()
    answer = transcript["messages"][-1]
    assert answer["role"] == "assistant" and answer["engine"] == "model"
    assert answer["tool_calls"] == ["catalog_search"]
    assert answer["cards"] == [{"id": program.id, "title": program.title}]
    offline = (await client.get(f"/admin/conversations/{users['9002']['id']}")).json()["messages"][-1]
    assert offline["engine"] == "offline" and offline["tool_calls"] == [] and offline["cards"]

    totals = (await client.get("/admin/funnel")).json()["totals"]
    assert totals["conversations"] == 4
    assert totals["programs_shown"] == 3  # two dialogs showed cards; the Mini App lead saw programs in the app
    assert totals["qualified"] == 3 and totals["contact_left"] == 1
    counts = [totals[stage] for stage in STAGES]
    assert counts == sorted(counts, reverse=True), counts  # a funnel never widens
