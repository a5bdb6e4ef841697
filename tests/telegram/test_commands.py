"""The runbook's commands, the notifier, and start-up without Telegram."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapters.telegram.notifier import handoff_card
from agent.ports import HandoffNotice
from tests.crm_helpers import wait_for
from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import Service, running_service, telegram_settings

USER = 700
ADMIN = 701
MANAGERS = -100500


@pytest.fixture
async def service(tmp_path: Path, fake_api: FakeBotAPI):  # type: ignore[no-untyped-def]
    settings = telegram_settings(
        tmp_path,
        fake_api.base_url,
        user_webapp_url="https://example.org/app",
        admin_webapp_url="https://example.org/admin/miniapp",
        admin_miniapp_enabled=True,
        admin_telegram_ids=str(ADMIN),
        manager_chat_id=MANAGERS,
    )
    async with running_service(settings, fake_api) as running:
        yield running


async def say(service: Service, update: dict[str, Any]) -> list[dict[str, Any]]:
    before = len(service.api.calls_of("sendMessage"))
    await service.deliver(update)
    await service.settle(update["update_id"])
    return [c.params for c in service.api.calls_of("sendMessage")[before:]]


async def test_help_app_and_adminapp(service: Service) -> None:
    (help_message,) = await say(service, updates.message(1, USER, "/help"))
    assert "/manager" in help_message["text"] and "/forget" in help_message["text"]
    (app,) = await say(service, updates.message(2, USER, "/app"))
    assert app["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"] == "https://example.org/app"
    (refusal,) = await say(service, updates.message(3, USER, "/adminapp"))
    assert "только администраторам" in refusal["text"] and "reply_markup" not in refusal
    (admin_app,) = await say(service, updates.message(4, ADMIN, "/adminapp"))
    assert admin_app["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"] == "https://example.org/admin/miniapp"


async def test_commands_are_registered_at_start(service: Service) -> None:
    await wait_for(lambda: bool(service.api.calls_of("setMyCommands")))
    names = [c["command"] for c in service.api.calls_of("setMyCommands")[0].params["commands"]]
    assert {"start", "app", "manager", "privacy", "forget", "help", "kbtest"} <= set(names)


async def test_privacy_sends_consent_and_policy(service: Service) -> None:
    sent = await say(service, updates.message(1, USER, "/privacy"))
    joined = "\n".join(m["text"] for m in sent)
    assert "Согласие на обработку персональных данных" in joined
    assert "Политика обработки персональных данных" in joined
    assert "SAMPLE TEXT" not in joined and "version:" not in joined


async def test_forget_asks_then_deletes(service: Service) -> None:
    await say(service, updates.message(1, USER, "/start"))
    await say(service, updates.message(2, USER, "мой вопрос"))
    (question,) = await say(service, updates.message(3, USER, "/forget"))
    yes = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    no = question["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    (cancelled,) = await say(service, updates.callback(4, USER, no))
    assert "ничего не удаляю" in cancelled["text"]
    async with service.runtime.db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM messages"))).scalar() >= 2
    (done,) = await say(service, updates.callback(5, USER, yes))
    assert "согласие на обработку персональных данных отозвано" in done["text"]
    async with service.runtime.db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM messages"))).scalar() == 0
        assert (await conn.execute(text("SELECT count(*) FROM conversations"))).scalar() == 0
    assert {c.params["callback_query_id"] for c in service.api.calls_of("answerCallbackQuery")} == {"cq4", "cq5"}


async def test_manager_hands_off_then_the_bot_stays_silent(service: Service) -> None:
    await say(service, updates.message(1, USER, "/start"))
    await say(service, updates.callback(2, USER, "grade:10"))
    handed = await say(service, updates.message(3, USER, "/manager"))
    to_user = [m for m in handed if int(m["chat_id"]) == USER]
    (card,) = [m for m in handed if int(m["chat_id"]) == MANAGERS]
    assert to_user and "менеджер" in to_user[0]["text"].lower()
    assert "Нужен менеджер" in card["text"] and "(/manager)" in card["text"]
    assert "Класс: 10" in card["text"] and "/admin/conversations/" in card["text"]
    assert "Контакт: нет согласия" in card["text"]  # no consent, so no phone
    assert await say(service, updates.message(4, USER, "алло?")) == []


async def test_kbtest_shows_passages_with_sources(service: Service) -> None:
    (usage,) = await say(service, updates.message(1, USER, "/kbtest"))
    assert "/kbtest Какие" in usage["text"]
    (answer,) = await say(service, updates.message(2, USER, "/kbtest Какие условия оплаты?"))
    assert answer["text"].count("Источник: https://") >= 1
    assert "<b>" in answer["text"]  # titles in bold, everything else escaped


async def test_leadtest_is_for_admins(service: Service) -> None:
    (refusal,) = await say(service, updates.message(1, USER, "/leadtest +79991234567"))
    assert "только администраторам" in refusal["text"]
    (usage,) = await say(service, updates.message(2, ADMIN, "/leadtest"))
    assert "+79991234567" in usage["text"]
    (result,) = await say(service, updates.message(3, ADMIN, "/leadtest +79991234567"))
    assert "CRM_PROVIDER=none" in result["text"]  # the CRM helper's explanation, passed through


async def test_other_input_gets_a_polite_answer(service: Service) -> None:
    (unknown,) = await say(service, updates.message(1, USER, "/unknown"))
    assert "/help" in unknown["text"]
    (media,) = await say(service, updates.photo(2, USER))
    assert "текст" in media["text"]
    (foreign,) = await say(service, updates.contact(3, USER, "+79990000000", owner_id=12345))
    assert "своим номером" in foreign["text"]
    async with service.runtime.db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM messages"))).scalar() == 0  # none reached the assistant


async def test_group_messages_are_ignored(service: Service) -> None:
    group_message = updates.message(1, USER, "привет")
    group_message["message"]["chat"] = {"id": MANAGERS, "type": "supergroup", "title": "Менеджеры"}
    assert await say(service, group_message) == []


async def test_handoff_card_goes_to_the_staff_chat(service: Service) -> None:
    notice = HandoffNotice(
        conversation_id=42,
        brand="kmipt",
        channel="telegram",
        user_display="Анна <@anna>",
        reason="просит скидку",
        profile={"grade": 10, "goal": "ege", "secret_internal": "x"},
        contact="+79991234567",
        transcript_url="https://bot.example.org/admin/conversations/42",
    )
    await service.runtime.telegram.notifier.notify_handoff(notice)  # type: ignore[union-attr]
    await service.drain()  # outside an update the card is a queued relay job
    (card,) = service.api.sent_to(MANAGERS)
    assert "Анна &lt;@anna&gt;" in card["text"] and "просит скидку" in card["text"]
    assert "Класс: 10" in card["text"] and "secret_internal" not in card["text"]
    assert "+79991234567" in card["text"]
    assert 'href="https://bot.example.org/admin/conversations/42"' in card["text"]
    without_consent = handoff_card(notice.model_copy(update={"contact": None, "transcript_url": None}))
    assert "+7999" not in without_consent and "/admin/conversations/42" in without_consent


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_api_starts_when_telegram_is_unreachable(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    settings = telegram_settings(tmp_path, f"http://127.0.0.1:{_closed_port()}", telegram_mode="polling")
    async with running_service(settings, fake_api) as running:
        health = await running.client.get("/api/health")
        assert health.status_code == 200
        diagnostics = (await running.client.get("/api/runtime/diagnostics")).json()
        assert diagnostics["telegram_queue"]["counts"]["queued"] == 0
        assert running.runtime.telegram.bot_username is None  # type: ignore[union-attr]


async def test_bot_start_up_finishes_once_telegram_answers(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    """getMe and setMyCommands once, then the bot's own @name is a link its replies may carry; start-up
    that failed after getMe (an attribute the service did not have) retried both forever with backoff."""
    settings = telegram_settings(tmp_path, fake_api.base_url, telegram_mode="webhook")
    async with running_service(settings, fake_api) as running:
        assistant = running.runtime.assistant
        assert assistant is not None

        async def known() -> bool:
            return "test_sales_bot" in assistant.own_telegram_names  # type: ignore[attr-defined]

        await wait_for(known, timeout=30, what="the bot's own name")
        assert len(fake_api.calls_of("getMe")) == 1
        assert len(fake_api.calls_of("setMyCommands")) == 1
