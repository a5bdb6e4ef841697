"""Texts per channel: bot commands and «кнопкой ниже» only in the Telegram chat (agent/channel_texts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.channel_texts import for_channel
from agent.types import Channel
from tests.conftest import MakeRuntime
from tests.assistant_helpers import Chat, RecordingNotifier

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
BOT_ONLY = ("/manager", "/forget", "/start", "кнопкой ниже", "в этот чат")


@pytest.mark.parametrize("path", sorted(KNOWLEDGE.glob("*/*.md")), ids=lambda p: p.name)
def test_knowledge_passages_read_well_outside_telegram(path: Path) -> None:
    text = for_channel(path.read_text("utf-8"), Channel.miniapp)
    assert not [word for word in BOT_ONLY if word in text]


def test_telegram_keeps_its_commands() -> None:
    text = "Отправьте в этом чате команду **/manager** — я передам ваш вопрос менеджеру."
    assert for_channel(text, Channel.telegram) == text
    assert for_channel(text, Channel.miniapp) == "Нажмите «Позвать менеджера» — я передам ваш вопрос менеджеру."
    withdraw = "Чтобы удалить свои данные, отправьте команду **/forget**."
    assert for_channel(withdraw, Channel.api) == "Чтобы удалить свои данные, напишите в чат «удалите мои данные»."


@pytest.mark.parametrize("channel", [Channel.miniapp, Channel.api])
async def test_dialog_outside_telegram_has_no_bot_only_words(make_runtime: MakeRuntime, channel: Channel) -> None:
    runtime = await make_runtime(notifier=RecordingNotifier())
    chat = Chat(runtime, user_id="777", channel=channel)
    texts = []
    for fields in ({"text": "Как с вами связаться, вы бот?"}, {"choice": "contact:start"}, {"choice": "consent:yes"},
                   {"text": "Хочу удалить свои данные"}, {"choice": "handoff"}, {"text": "ау"}):
        texts.append((await chat.send(**fields)).text)
    joined = "\n".join(texts)
    assert not [word for word in BOT_ONLY if word in joined], joined
    assert "ответит здесь" not in joined


async def test_telegram_dialog_keeps_the_reply_keyboard_prompt(make_runtime: MakeRuntime) -> None:
    runtime = await make_runtime(notifier=RecordingNotifier())
    chat = Chat(runtime, user_id="778")
    await chat.send(choice="contact:start")
    asked = await chat.send(choice="consent:yes")
    assert "кнопкой ниже" in asked.text
