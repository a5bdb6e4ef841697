"""Sending through the fake Bot API: 429, 5xx, 403, parse errors, per-chat pacing, rendering."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

from adapters.telegram.rendering import MESSAGE_LIMIT, plan_messages, split_text
from adapters.telegram.sender import html_to_plain
from agent.types import Action, ProgramCard, QuickReply, Reply
from tests.fakes import updates
from tests.fakes.assistant import InstantAssistant
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import running_service, telegram_settings

USER = 900


@pytest.mark.parametrize(
    ("status", "description", "retry_after", "failures", "min_gap"),
    [
        (429, "Too Many Requests: retry after 1", 1, 1, 0.95),  # waits retry_after
        (502, "Bad Gateway", None, 2, 0.0),  # backs off and tries again
    ],
)
async def test_flood_wait_and_server_errors_are_retried(
    tmp_path: Path, fake_api: FakeBotAPI, status: int, description: str, retry_after: int | None, failures: int, min_gap: float
) -> None:
    fake_api.fail_next("sendMessage", status, description, retry_after=retry_after, times=failures)
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, assistant=InstantAssistant()) as service:
        await service.deliver(updates.message(1, USER, "привет"))
        await service.settle(1)
        attempts = fake_api.calls_of("sendMessage")
        assert len(attempts) == failures + 1
        assert attempts[1].at - attempts[0].at >= min_gap
        assert [m["text"] for m in fake_api.sent_to(USER)][-1] == "Ответ"
        assert (await service.runtime.telegram.queue.stats())["counts"]["done"] == 1


async def test_403_marks_the_user_blocked_and_nothing_more_is_sent(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, assistant=InstantAssistant()) as service:
        await service.deliver(updates.message(1, USER, "привет"))
        await service.settle(1)
        user = await service.runtime.users.get_or_create("telegram", str(USER))
        assert user.blocked_at is not None
        assert (await service.runtime.telegram.queue.stats())["counts"]["done"] == 1  # not retried
        # Another update for that chat (e.g. a manager's notice) sends nothing.
        await service.runtime.telegram.notifier.notify_user(USER, "Заявка подтверждена")
        assert len(fake_api.sent_to(USER)) == 1

        # Writing to the bot again means they unblocked it.
        await service.deliver(updates.message(2, USER, "я вернулся"))
        await service.settle(2)
        assert fake_api.sent_to(USER)[-1]["text"] == "Ответ"
        assert (await service.runtime.users.get_or_create("telegram", str(USER))).blocked_at is None


async def test_unparsable_html_is_resent_as_plain_text(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.fail_next("sendMessage", 400, "Bad Request: can't parse entities: unsupported start tag")
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, assistant=InstantAssistant(text="5 < 6 & 7 > 3")) as service:
        await service.deliver(updates.message(1, USER, "привет"))
        await service.settle(1)
        first, second = fake_api.calls_of("sendMessage")
        assert first.params["parse_mode"] == "HTML" and first.params["text"] == "5 &lt; 6 &amp; 7 &gt; 3"
        assert "parse_mode" not in second.params and second.params["text"] == "5 < 6 & 7 > 3"


async def test_one_chat_is_paced_to_its_rate(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = telegram_settings(
        tmp_path, fake_api.base_url, telegram_send_chat_per_second=2, telegram_send_chat_burst=2
    )
    async with running_service(settings, fake_api, assistant=InstantAssistant()) as service:
        notifier = service.runtime.telegram.notifier
        started = time.monotonic()
        for n in range(4):
            await notifier.notify_user(USER, f"сообщение {n}")
        elapsed = time.monotonic() - started
        # 2 per 1 s window: the 3rd and 4th wait for the window to move on.
        assert elapsed >= 0.9
        assert len(fake_api.sent_to(USER)) == 4


async def test_model_text_with_markup_and_10000_characters(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    paragraph = "Цена <b>не</b> указана & «скобки» <script>alert(1)</script>. " * 20
    long_text = "\n\n".join(paragraph.strip() for _ in range(9))
    assert len(long_text) > 10_000
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, assistant=InstantAssistant(text=long_text)) as service:
        await service.deliver(updates.message(1, USER, "расскажите"))
        await service.settle(1)
        sent = [m["text"] for m in fake_api.sent_to(USER)]
    assert len(sent) >= 3
    assert all("<b>" not in s and "<script>" not in s for s in sent)
    plain = [html.unescape(s) for s in sent]
    assert all(len(p) <= MESSAGE_LIMIT for p in plain)
    assert re.sub(r"\s+", " ", " ".join(plain)) == re.sub(r"\s+", " ", long_text)


async def test_thinking_is_shown_while_a_slow_agent_works(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, assistant=InstantAssistant(delay=0.6)) as service:
        await service.deliver(updates.message(1, USER, "вопрос"))
        await service.settle(1)
        (thinking,) = fake_api.calls_of("sendMessageDraft")
        assert thinking.params["chat_id"] == USER and "text" not in thinking.params  # «Thinking…»
        assert thinking.at < fake_api.calls_of("sendMessage")[0].at
        assert fake_api.calls_of("sendChatAction") == []


async def test_typing_is_shown_where_drafts_are_refused(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    fake_api.refuse_drafts()
    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, assistant=InstantAssistant(delay=0.6)) as service:
        await service.deliver(updates.message(1, USER, "вопрос"))
        await service.settle(1)
        (typing,) = fake_api.calls_of("sendChatAction")
        assert typing.params == {"chat_id": USER, "action": "typing"}
        assert typing.at < fake_api.calls_of("sendMessage")[0].at


def test_split_prefers_paragraphs_then_sentences_then_words() -> None:
    assert split_text("a\n\nb", limit=10) == ["a\n\nb"]
    assert split_text("first para.\n\nsecond para.", limit=15) == ["first para.", "second para."]
    assert split_text("One sentence here. Another one here.", limit=20) == ["One sentence here.", "Another one here."]
    assert split_text("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_text("   ") == []


def test_plan_places_keyboards_where_telegram_allows_them() -> None:
    card = ProgramCard(id="p", title="T", url="https://kmipt.ru/p", price_text="1 ₽", next_start_text="скоро", why_match="w")
    reply = Reply(
        text="Вот варианты",
        cards=[card],
        quick_replies=[QuickReply(label="Ещё", payload="more"), QuickReply(label="x" * 5, payload="y" * 65)],
        actions=[Action.ask_contact, Action.open_miniapp],
    )
    planned = plan_messages(reply, webapp_url="https://example.org/app")
    text_message, card_message = planned
    assert text_message.markup.keyboard[0][0].request_contact is True  # type: ignore[union-attr]
    rows = card_message.markup.inline_keyboard  # type: ignore[union-attr]
    assert rows[0][0].url == "https://kmipt.ru/p"
    assert [b.callback_data for b in rows[1]] == ["more"]  # the 65-byte payload is dropped
    assert rows[2][0].web_app.url == "https://example.org/app"
    assert plan_messages(Reply(text="тихо", silent=True)) == []


def test_plain_text_fallback_restores_the_original() -> None:
    assert html_to_plain("<b>5 &lt; 6</b> &amp; ok") == "5 < 6 & ok"


async def test_bot_api_answer_models_are_built_once(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """aiogram parses each answer as ``Response[<returned type>]``; pydantic keeps that class only
    weakly, so after a garbage collection it was rebuilt (~5 ms of CPU per Bot API call)."""
    import gc

    from aiogram.methods import SendMessage
    from aiogram.methods.base import Response

    settings = telegram_settings(tmp_path, fake_api.base_url)
    async with running_service(settings, fake_api, assistant=InstantAssistant()) as service:
        await service.deliver(updates.message(1, USER, "привет"))
        await service.settle(1)
        built = id(Response[SendMessage.__returning__])
        gc.collect()
        assert id(Response[SendMessage.__returning__]) == built


async def test_messages_waiting_for_the_global_budget_wait_in_turn(tmp_path: Path) -> None:
    """Without Redis, every message waiting for the global budget polled the window at each freed
    slot (25 waiting for 10/s: ~45 limiter hits); in turn, only the first waiter polls."""
    import asyncio

    from limits.aio.storage import MemoryStorage

    from adapters.telegram.sender import SendPolicy
    from tests.conftest import make_settings

    policy = SendPolicy(make_settings(tmp_path, telegram_send_global_per_second=10), None, MemoryStorage())  # type: ignore[arg-type]
    hits = 0
    hit = policy.limiter.hit

    async def counting_hit(*args: object) -> bool:
        nonlocal hits
        hits += 1
        return await hit(*args)  # type: ignore[arg-type]

    policy.limiter.hit = counting_hit  # type: ignore[method-assign]
    started = time.monotonic()
    await asyncio.gather(*(policy._take_slots(None) for _ in range(25)))
    assert time.monotonic() - started >= 1.9  # the budget still holds: 10, 10, then 5 a second later
    assert hits <= 25 + 6
