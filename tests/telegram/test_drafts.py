"""Live replies in Telegram: the real service (queue, aiogram, the assistant with its model) against the
fake Bot API, and the model a fake Responses server on 127.0.0.1 that streams its answer over SSE.

What a parent sees, from the fake's timestamped calls: «Thinking…» first, a status during the tool
round, drafts that grow (each a prefix of the final message, never an unchecked amount), then the
final message with its cards; the typing indicator where drafts are refused."""

from __future__ import annotations

import asyncio
import html
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot

from adapters.http.ratelimit import make_storage
from adapters.storage.repositories import UserRepository
from adapters.storage.models import utcnow
from adapters.telegram.drafts import DRAFT_INTERVAL_SECONDS, DraftSupport, TelegramLiveReply, update_received
from adapters.telegram.service import make_bot
from adapters.telegram.sender import SendPolicy
from agent.types import Inbound, Reply
from tests import openai_fakes as fake
from tests.crm_helpers import wait_for
from tests.fake_responses import responses_app
from tests.fakes import updates
from tests.fakes.assistant import InstantAssistant
from tests.fakes.telegram_api import Call, FakeBotAPI
from tests.telegram.conftest import TOKEN, running_service, telegram_settings
from tests.thread_server import ThreadServer

USER = 555001
ANSWER = (
    "Здравствуйте! Для 10 класса подойдёт очный курс подготовки к ЕГЭ по математике. "
    "Занятия идут весь учебный год в Долгопрудном. Стоимость семестра — 36 900 ₽. "
    "Хотите записаться на пробное занятие?"
)
INVENTED = (
    "Здравствуйте! Для 10 класса подойдёт очный курс подготовки к ЕГЭ по математике. "
    "Со скидкой за год выйдет 99 000 ₽, это очень выгодно. Хотите записаться на пробное занятие?"
)


def model_script(text: str):
    """First round: the model looks programs up; second: the structured answer with a card."""
    def script(body: dict[str, Any], number: int) -> list[dict[str, Any]]:
        if not any(item.get("type") == "function_call_output" for item in body["input"]):
            return [fake.function_call("catalog_search", {"grade": 10, "goal": "ege", "subject": "math", "format": "offline"})]
        return [fake.answer(text, program_ids=["ege-math-10-11-offline"])]
    return script


def model_settings(tmp_path: Path, api: FakeBotAPI, model_url: str, **overrides: Any):
    return telegram_settings(tmp_path, api.base_url, openai_api_key="sk-test", openai_base_url=f"{model_url}/v1", **overrides)


def drafts(api: FakeBotAPI, chat_id: int = USER) -> list[Call]:
    return [c for c in api.calls_of("sendMessageDraft") if int(c.params["chat_id"]) == chat_id]


def plain(call: Call) -> str:
    return html.unescape(call.params.get("text") or "")


async def one_turn(tmp_path: Path, api: FakeBotAPI, text: str, **overrides: Any) -> tuple[list[Call], list[Call], int]:
    app = responses_app(model_script(text), delay=0.5, delta_delay=0.03)
    with ThreadServer(app) as model:
        settings = model_settings(tmp_path, api, model.url, **overrides)
        async with running_service(settings, api) as service:
            await service.deliver(updates.message(1, USER, "Здравствуйте, сын в 10 классе, нужна математика к ЕГЭ очно"))
            await service.settle(1, timeout=30)
    return drafts(api), api.calls_of("sendMessage"), len(app.state.seen)


async def test_thinking_first_then_a_status_then_growing_checked_drafts_then_the_message(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    shown, sent, model_calls = await one_turn(tmp_path, fake_api, ANSWER)
    assert model_calls == 2
    final = html.unescape(sent[0].params["text"])
    assert final.startswith(ANSWER)
    assert any("ЕГЭ по математике" in html.unescape(m.params["text"]) for m in sent[1:])  # the program card

    # The first thing the parent sees: «Thinking…» (no text; aiogram omits ""), or already the tool
    # round's status when the machine is so slow that it came before the feedback delay ran out.
    assert shown[0].params.get("text") in (None, "<i>Подбираю программы…</i>")
    assert fake_api.calls_of("sendChatAction") == []  # drafts replace the typing indicator
    # The feedback draft shows «Thinking…» and then the tool round's status; on a fast machine the
    # status can fall inside the draft interval and be overtaken by the answer, so only its text is checked.
    statuses = [c for c in shown if c.params["draft_id"] == shown[0].params["draft_id"]]
    assert all(c.params.get("text") in (None, "<i>Подбираю программы…</i>") for c in statuses)
    growing = [plain(c) for c in shown if c.params["draft_id"] != shown[0].params["draft_id"]]
    assert growing, growing  # how many sentences show before the answer ends depends on the machine's speed
    assert all(final.startswith(text) for text in growing)  # nothing shown that the message takes back
    assert [len(t) for t in growing] == sorted({len(t) for t in growing})  # each one longer
    assert all(t.endswith((".", "!", "?", "₽")) for t in growing)  # whole sentences only
    times = [c.at for c in shown]
    assert all(later - earlier >= DRAFT_INTERVAL_SECONDS * 0.9 for earlier, later in zip(times, times[1:]))
    assert times[-1] < sent[0].at  # the message comes after every draft


async def test_an_invented_amount_is_never_shown_in_a_draft(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    shown, sent, _ = await one_turn(tmp_path, fake_api, INVENTED)
    texts = [plain(c) for c in shown]
    assert any(t.startswith("Здравствуйте!") for t in texts)
    assert not any("99 000" in t or "99\u00a0000" in t for t in texts)
    final = html.unescape(sent[0].params["text"])
    assert "99 000" not in final and "рассчитает и подтвердит менеджер" in final  # the brand rule replaced it


async def test_typing_where_the_bot_api_server_has_no_drafts_learned_once(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.refuse_drafts()
    app = responses_app(model_script(ANSWER), delay=0.6)
    with ThreadServer(app) as model:
        settings = model_settings(tmp_path, fake_api, model.url, openai_stream=False)
        async with running_service(settings, fake_api) as service:
            await service.deliver(updates.message(1, USER, "Здравствуйте, 10 класс, математика"))
            await service.settle(1, timeout=30)
            assert len(drafts(fake_api)) == 1  # tried once and refused
            await service.deliver(updates.message(2, USER, "А онлайн можно?"))
            await service.settle(2, timeout=30)
    assert len(drafts(fake_api)) == 1  # remembered: the second turn did not ask again
    typing = fake_api.calls_of("sendChatAction")
    assert len(typing) >= 2 and all(c.params["action"] == "typing" for c in typing)
    messages = fake_api.calls_of("sendMessage")
    assert typing[0].at < messages[0].at


async def test_a_retried_update_resends_the_stored_reply_without_a_second_stream(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.fail_next("sendMessage", 400, "Bad Request: chat is being migrated")  # the first delivery fails
    app = responses_app(model_script(ANSWER), delay=0.2, delta_delay=0.01)
    with ThreadServer(app) as model:
        settings = model_settings(tmp_path, fake_api, model.url)
        async with running_service(settings, fake_api) as service:
            await service.deliver(updates.message(1, USER, "Здравствуйте, 10 класс, математика ЕГЭ очно"))
            await service.settle(1, timeout=30)
            await wait_for(lambda: _sent_ok(fake_api), timeout=10, what="the retried reply")
    assert len(app.state.seen) == 2  # one turn of the model (a tool round and the answer), not two
    first_attempt_end = fake_api.calls_of("sendMessage")[0].at
    retried = [c for c in drafts(fake_api) if c.at > first_attempt_end]
    assert all("text" not in c.params for c in retried)  # no second stream (at most a «Thinking…» on a slow machine)
    texts = [html.unescape(c.params["text"]) for c in fake_api.calls_of("sendMessage")]
    assert texts[0] == texts[1] and texts[0].startswith(ANSWER)


async def _sent_ok(api: FakeBotAPI) -> bool:
    return len(api.calls_of("sendMessage")) >= 3  # the failed one, then the text and the card


# ---------------------------------------------------------------- the feedback object on its own


async def make_policy_bot(tmp_path: Path, api: FakeBotAPI, **overrides: Any) -> tuple[Bot, SendPolicy]:
    from adapters.wiring import build_runtime

    settings = telegram_settings(tmp_path, api.base_url, **overrides)
    runtime = build_runtime(settings)
    await runtime.db.migrate()
    policy = SendPolicy(settings, UserRepository(runtime.db), make_storage(None))
    return make_bot(TOKEN, api.base_url, policy), policy


async def test_no_drafts_in_a_group_only_typing(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    bot, _ = await make_policy_bot(tmp_path, fake_api)
    group = -100123
    async with TelegramLiveReply(bot, group, DraftSupport(), delay=0.05) as live:
        live.status("Подбираю программы…")
        live.text("Здравствуйте!")
        await asyncio.sleep(0.3)
    await bot.session.close()
    assert fake_api.calls_of("sendMessageDraft") == []
    assert [c.params["action"] for c in fake_api.calls_of("sendChatAction")] == ["typing"]


async def test_a_refused_draft_falls_back_to_typing_for_the_turn(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.fail_next("sendMessageDraft", 400, "Bad Request: TEXTDRAFT_PEER_INVALID")
    bot, _ = await make_policy_bot(tmp_path, fake_api)
    support = DraftSupport()
    async with TelegramLiveReply(bot, USER, support, delay=0.05) as live:
        await asyncio.sleep(0.2)
        live.text("Здравствуйте!")
        await asyncio.sleep(0.2)
    await bot.session.close()
    assert len(fake_api.calls_of("sendMessageDraft")) == 1 and support.available  # only this turn
    assert len(fake_api.calls_of("sendChatAction")) == 1


async def test_a_fast_reply_shows_no_feedback_at_all(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    bot, _ = await make_policy_bot(tmp_path, fake_api)
    async with TelegramLiveReply(bot, USER, DraftSupport()):
        await asyncio.sleep(0.05)
    await bot.session.close()
    assert fake_api.calls == []


async def test_the_feedback_delay_counts_from_the_updates_arrival(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """An update that waited 0.4 s for a worker gets its «Thinking…» 0.1 s into the turn, not 0.5 s."""
    bot, _ = await make_policy_bot(tmp_path, fake_api)
    with update_received(utcnow() - timedelta(seconds=0.4)):
        entered = time.monotonic()
        async with TelegramLiveReply(bot, USER, DraftSupport(), delay=0.5):
            await asyncio.sleep(0.6)
    await bot.session.close()
    (draft,) = fake_api.calls_of("sendMessageDraft")
    assert 0.05 < draft.at - entered < 0.35


async def test_a_busy_event_loop_does_not_postpone_the_feedback_further(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """Many turns starting at once keep the loop busy before the feedback task first runs; that time
    is part of the parent's wait, not added on top of the delay."""
    bot, _ = await make_policy_bot(tmp_path, fake_api)
    entered = time.monotonic()
    async with TelegramLiveReply(bot, USER, DraftSupport(), delay=0.5):
        time.sleep(0.4)  # the other turns' start-up, before this one first yields
        await asyncio.sleep(0.7)
    await bot.session.close()
    (draft,) = fake_api.calls_of("sendMessageDraft")
    assert draft.at - entered < 0.8  # due 0.5 s after entering, not 0.5 s after the loop was free again


class BusyStartAssistant(InstantAssistant):
    """Each turn's start-up is CPU that does not yield (time.sleep), then the model's wait."""

    async def handle(self, inbound: Inbound) -> Reply:
        time.sleep(0.05)
        return await super().handle(inbound)


async def test_many_turns_starting_at_once_do_not_hold_back_the_feedback(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """20 chats' updates claimed at once, each turn with 50 ms of start-up CPU: 1 s of start-ups. Every
    «Thinking…» still comes about 0.2 s after its update, not after all the start-ups."""
    settings = telegram_settings(tmp_path, fake_api.base_url, telegram_mode="polling")
    chats = range(USER, USER + 20)
    async with running_service(settings, fake_api, assistant=BusyStartAssistant(delay=1.0)) as service:
        await service.deliver(updates.message(1, USER - 1, "Здравствуйте"))  # warm-up
        await service.settle(1, timeout=30)
        posted = time.monotonic()
        for n, chat in enumerate(chats):
            fake_api.push_update(updates.message(10 + n, chat, "Здравствуйте"))
        for n in range(len(chats)):
            await service.settle(10 + n, timeout=60)
    waited = [next(c.at for c in drafts(fake_api, chat)) - posted for chat in chats]
    assert max(waited) < 0.9, sorted(waited)  # without the gate at least 1 s: all start-ups first


async def test_drafts_take_nothing_from_the_chat_budget_of_the_message(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """With one message per chat per 2 s, five drafts in a row still leave the message its slot."""
    bot, _ = await make_policy_bot(tmp_path, fake_api, telegram_send_chat_per_second=0.5, telegram_send_chat_burst=1)
    async with TelegramLiveReply(bot, USER, DraftSupport(), delay=0, interval=0.01) as live:
        for n in range(5):
            live.text(f"Предложение {n}.")
            await asyncio.sleep(0.03)
    started = asyncio.get_running_loop().time()
    await bot.send_message(USER, "Ответ")
    waited = asyncio.get_running_loop().time() - started
    await bot.session.close()
    assert len(fake_api.calls_of("sendMessageDraft")) >= 3
    assert waited < 0.5


async def test_a_draft_on_its_way_lands_before_the_final_message(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    bot, _ = await make_policy_bot(tmp_path, fake_api)
    release = asyncio.Event()
    original = fake_api._result

    async def slow(method: str, params: dict[str, Any]) -> Any:
        if method == "sendMessageDraft" and params.get("text"):
            await release.wait()
        return await original(method, params)

    released_at: list[float] = []

    def free() -> None:
        released_at.append(time.monotonic())
        release.set()

    fake_api._result = slow  # type: ignore[method-assign]
    async with TelegramLiveReply(bot, USER, DraftSupport(), delay=0) as live:
        live.text("Здравствуйте!")
        await asyncio.sleep(0.1)
        asyncio.get_running_loop().call_later(0.2, free)
    await bot.send_message(USER, "Здравствуйте! Ответ.")
    await bot.session.close()
    (draft,) = fake_api.calls_of("sendMessageDraft")
    (message,) = fake_api.calls_of("sendMessage")
    assert draft.at < released_at[0] <= message.at  # the message waited for the draft's answer
