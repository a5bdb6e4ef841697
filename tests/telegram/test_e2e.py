"""End to end through real aiogram and the fake Bot API: the sales funnel in both modes, both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.crm_helpers import wait_for
from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import Service, running_service, telegram_settings

USER = 501


FUNNEL = [("grade:11", "Какая цель"), ("goal:ege", "Какой предмет"), ("subject:math", "Какой формат")]


def buttons(message: dict) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b.get("callback_data") or b.get("url") for row in rows for b in row]


async def run_funnel(service: Service, api: FakeBotAPI) -> None:
    """The real assistant (offline policy): /start -> buttons -> top 3 cards -> consent -> contact -> lead."""
    await service.deliver(updates.message(1, USER, "/start ads_vk-2026"))
    await service.settle(1)
    greeting = api.sent_to(USER)[-1]
    assert "Здравствуйте" in greeting["text"] and "grade:11" in buttons(greeting)

    for update_id, (choice, next_question) in enumerate(FUNNEL, start=2):
        await service.deliver(updates.callback(update_id, USER, choice))
        await service.settle(update_id)
        assert next_question in api.sent_to(USER)[-1]["text"]

    before = len(api.sent_to(USER))
    await service.deliver(updates.callback(5, USER, "format:online"))
    await service.settle(5)
    cards = [m for m in api.sent_to(USER)[before:] if any(b and b.startswith("https://") for b in buttons(m))]
    assert len(cards) == 3
    assert all(card["text"].startswith("<b>") and "₽" in card["text"] for card in cards)
    enrol = next(b for b in buttons(cards[-1]) if b and b.startswith("program:"))

    await service.deliver(updates.callback(6, USER, enrol))
    await service.settle(6)
    assert "consent:yes" in buttons(api.sent_to(USER)[-1])
    await service.deliver(updates.callback(7, USER, "consent:yes"))
    await service.settle(7)
    contact_request = api.sent_to(USER)[-1]
    assert contact_request["reply_markup"]["keyboard"][0][0]["request_contact"] is True

    await service.deliver(updates.contact(8, USER, "+79991234567"))
    await service.settle(8)
    thanks = api.sent_to(USER)[-1]
    assert "Заявка" in thanks["text"]
    assert thanks["reply_markup"] == {"remove_keyboard": True}

    # Every button press answered; pressed choices removed from their message.
    assert {c.params["callback_query_id"] for c in api.calls_of("answerCallbackQuery")} == {f"cq{n}" for n in range(2, 8)}
    assert len(api.calls_of("editMessageReplyMarkup")) == 6

    async with service.runtime.db.engine.connect() as conn:
        leads = (await conn.execute(text("SELECT phone, source FROM leads"))).all()
        source = (await conn.execute(text("SELECT source FROM users WHERE external_id = :u"), {"u": str(USER)})).scalar()
    assert [lead[0] for lead in leads] == ["+79991234567"]
    assert source == "ads_vk-2026"


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_funnel_end_to_end_on_the_real_assistant(
    mode: str, tmp_path: Path, fake_api: FakeBotAPI, database_url: str
) -> None:
    settings = telegram_settings(tmp_path, fake_api.base_url, database_url, telegram_mode=mode)
    async with running_service(settings, fake_api) as service:
        await run_funnel(service, fake_api)
        await wait_for(lambda: bool(fake_api.calls_of("setMyCommands")))
        if mode == "polling":
            # Confirmed only after being stored: the next getUpdates carries offset = last + 1.
            await wait_for(lambda: fake_api.confirmed_offset == 9)


async def test_start_source_is_first_touch_only(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api) as service:
        await service.deliver(updates.message(1, USER, "/start first_campaign"))
        await service.deliver(updates.message(2, USER, "/start second_campaign"))
        await service.deliver(updates.message(3, 502, "/start bad payload!"))
        await service.deliver(updates.message(4, 503, "/start " + "x" * 65))
        for update_id in (1, 2, 3, 4):
            await service.settle(update_id)
        sources = {}
        for user_id in (USER, 502, 503):
            sources[user_id] = (await service.runtime.users.get_or_create("telegram", str(user_id))).source
        assert sources == {USER: "first_campaign", 502: None, 503: None}
        assert all("Здравствуйте" in service.api.sent_to(u)[0]["text"] for u in (USER, 502, 503))


async def test_a_reply_is_sent_only_by_the_worker_holding_the_claim(
    tmp_path: Path, fake_api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first processing finds its claim gone when the reply is ready (its lease lapsed on a starved
    loop): it sends nothing; the update runs again once the lease is over and the parent gets one answer."""
    settings = telegram_settings(tmp_path, fake_api.base_url, telegram_queue_lease_seconds=1.0)
    async with running_service(settings, fake_api) as service:
        queue = service.runtime.telegram.queue  # type: ignore[union-attr]
        confirm = queue.confirm
        checks: list[bool] = []

        async def lost_once(item: object, worker: str) -> bool:
            checks.append(bool(checks))
            return checks[-1] and await confirm(item, worker)  # type: ignore[arg-type]

        monkeypatch.setattr(queue, "confirm", lost_once)
        await service.deliver(updates.message(1, USER, "/start"))
        await service.settle(1)
        assert checks[:2] == [False, True]
        greetings = [m for m in fake_api.sent_to(USER) if "Здравствуйте" in m["text"]]
        assert len(greetings) == 1
