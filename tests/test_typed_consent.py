"""Consent typed as words while the consent prompt is pending («да, согласен», «согласна», «нет»): taken
like the buttons, in every channel; the same words at any other moment are not consent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from adapters.storage.models import Lead
from adapters.runtime import Runtime
from agent.types import Channel
from tests.assistant_helpers import Chat, assistant_runtime


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await assistant_runtime(tmp_path)
    yield runtime
    await runtime.close()


async def _leads(rt: Runtime) -> list[Lead]:
    async with rt.db.session() as session:
        return list((await session.exec(select(Lead))).all())


def _payloads(reply) -> list[str]:
    return [q.payload for q in reply.quick_replies]


@pytest.mark.parametrize("channel", [Channel.telegram, Channel.api, Channel.miniapp])
@pytest.mark.parametrize(
    "words", ["да, согласен", "Согласна", "да", "ок, согласен на обработку", "Да, даю согласие!", "согласны)", "конечно"]
)
async def test_typed_consent_is_taken_and_the_lead_created(rt: Runtime, channel: Channel, words: str) -> None:
    chat = Chat(rt, user_id="801", channel=channel)
    asked = await chat.send(text="Мой номер 8 916 555-12-34, запишите на пробное")
    assert _payloads(asked) == ["consent:yes", "consent:no"]
    done = await chat.send(text=words)
    assert done.lead_id is not None and "заявк" in done.text.lower(), done.text
    (lead,) = await _leads(rt)
    assert lead.phone == "+79165551234"
    assert await rt.lead_service.has_consent(lead.user_id)


@pytest.mark.parametrize("words", ["нет", "Нет, не согласна", "не согласен"])
async def test_typed_refusal_is_declined_politely(rt: Runtime, words: str) -> None:
    chat = Chat(rt, user_id="802", channel=Channel.api)
    await chat.send(text="89165551234, перезвоните")
    reply = await chat.send(text=words)
    assert "без согласия" in reply.text and reply.lead_id is None
    assert await _leads(rt) == []


async def test_consent_words_with_a_question_take_the_consent_and_answer(rt: Runtime) -> None:
    chat = Chat(rt, user_id="803")
    await chat.send(text="Мой номер 8 916 555-12-34")
    reply = await chat.send(text="да, согласна. А сколько стоит ЕГЭ по физике онлайн?")
    assert reply.lead_id is not None and "₽" in reply.text


async def test_yes_is_not_consent_when_no_consent_is_pending(rt: Runtime) -> None:
    chat = Chat(rt, user_id="804")
    asked = await chat.send(choice="contact:start")
    assert _payloads(asked) == ["consent:yes", "consent:no"]
    await chat.send(text="А сколько стоит ЕГЭ по физике онлайн?")  # the prompt was left unanswered
    await chat.send(text="да")
    state = await rt.store.load("telegram", "804", "kmipt")
    assert not await rt.lead_service.has_consent(state.user_id)
