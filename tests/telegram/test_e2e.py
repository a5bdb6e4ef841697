"""End to end through real aiogram and the fake Bot API: the sales funnel in both modes, both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.fakes import updates
from tests.fakes.assistant import ScriptedAssistant
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import Service, running_service, telegram_settings, wait_until

USER = 501


async def run_funnel(service: Service, api: FakeBotAPI) -> None:
    await service.deliver(updates.message(1, USER, "/start ads_vk-2026"))
    await service.settle(1)
    greeting = api.sent_to(USER)[-1]
    assert "В каком классе" in greeting["text"]
    grade_buttons = [b["callback_data"] for row in greeting["reply_markup"]["inline_keyboard"] for b in row]
    assert grade_buttons == ["grade:9", "grade:10", "grade:11"]

    await service.deliver(updates.callback(2, USER, "grade:11"))
    await service.settle(2)
    goal = api.sent_to(USER)[-1]
    assert goal["text"] == "Какая цель?"

    await service.deliver(updates.callback(3, USER, "goal:ege"))
    await service.settle(3)
    sent = api.sent_to(USER)
    cards = [m for m in sent if "Программа" in m["text"]]
    assert len(cards) == 3
    for card in cards:
        assert "&lt;ЕГЭ &amp; олимпиады&gt;" in card["text"]  # model/catalog text escaped
        assert card["reply_markup"]["inline_keyboard"][0][0]["url"].startswith("https://kmipt.ru/")
    contact_request = next(m for m in sent if "keyboard" in (m.get("reply_markup") or {}))
    assert contact_request["reply_markup"]["keyboard"][0][0]["request_contact"] is True

    await service.deliver(updates.contact(4, USER, "+79991234567"))
    await service.settle(4)
    thanks = api.sent_to(USER)[-1]
    assert "Заявка принята" in thanks["text"]
    assert thanks["reply_markup"] == {"remove_keyboard": True}

    # Every button press answered; pressed choices removed from their message.
    assert {c.params["callback_query_id"] for c in api.calls_of("answerCallbackQuery")} == {"cq2", "cq3"}
    assert len(api.calls_of("editMessageReplyMarkup")) == 2

    async with service.runtime.db.engine.connect() as conn:
        leads = (await conn.execute(text("SELECT phone, user_id FROM leads"))).all()
        source = (await conn.execute(text("SELECT source FROM users WHERE external_id = :u"), {"u": str(USER)})).scalar()
    assert [lead[0] for lead in leads] == ["+79991234567"]
    assert source == "ads_vk-2026"


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_funnel_end_to_end(mode: str, tmp_path: Path, fake_api: FakeBotAPI, database_url: str) -> None:
    settings = telegram_settings(tmp_path, fake_api.base_url, database_url, telegram_mode=mode)
    async with running_service(settings, fake_api, ScriptedAssistant) as service:
        await run_funnel(service, fake_api)
        await wait_until(lambda: bool(fake_api.calls_of("setMyCommands")))
        if mode == "polling":
            # Confirmed only after being stored: the next getUpdates carries offset = last + 1.
            await wait_until(lambda: fake_api.confirmed_offset == 5)


async def test_start_source_is_first_touch_only(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, ScriptedAssistant) as service:
        assistant = service.runtime.assistant  # type: ignore[attr-defined]
        await service.deliver(updates.message(1, USER, "/start first_campaign"))
        await service.deliver(updates.message(2, USER, "/start second_campaign"))
        await service.deliver(updates.message(3, 502, "/start bad payload!"))
        await service.deliver(updates.message(4, 503, "/start " + "x" * 65))
        for update_id in (1, 2, 3, 4):
            await service.settle(update_id)
        sources = [(i.user_id, i.source) for i in assistant.seen]
        # Chats run concurrently; one chat's updates keep their order.
        assert [s for s in sources if s[0] == str(USER)] == [(str(USER), "first_campaign"), (str(USER), "second_campaign")]
        assert sorted(s for s in sources if s[0] != str(USER)) == [("502", None), ("503", None)]
        assert all(i.start for i in assistant.seen)
        user = await service.runtime.users.get_or_create("telegram", str(USER))
        assert user.source == "first_campaign"
