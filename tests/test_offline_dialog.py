"""The offline policy carries a whole dialog from greeting to a stored lead, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from datetime import timedelta

from sqlmodel import select

from adapters.storage.models import ConsentRecord, CrmOutbox, Lead, Message
from adapters.runtime import Runtime
from agent.ports import KnowledgeResult
from agent.types import Action, Channel, SharedContact
from tests.conftest import MakeRuntime
from tests.assistant_helpers import Chat, RecordingNotifier


async def test_offline_dialog_from_greeting_to_lead(runtime: Runtime) -> None:
    chat = Chat(runtime)

    hello = await chat.send(start=True, source="vk_ads")
    assert hello.engine == "offline" and "Здравствуйте" in hello.text
    assert [q.payload for q in hello.quick_replies][:2] == ["grade:1", "grade:2"]

    goal = await chat.send(choice="grade:11")
    assert "цель" in goal.text and "goal:ege" in [q.payload for q in goal.quick_replies]
    subject = await chat.send(choice="goal:ege")
    assert "subject:math" in [q.payload for q in subject.quick_replies]
    fmt = await chat.send(choice="subject:math")
    assert "format:offline" in [q.payload for q in fmt.quick_replies]
    found = await chat.send(choice="format:offline")
    assert 1 <= len(found.cards) <= 3
    expected = runtime.catalog.search("kmipt", _criteria(11, "ege", "math", "offline"), today=runtime.assistant.today())
    assert [c.id for c in found.cards] == [c.id for c in expected.items]
    assert all(card.price_text and card.url.startswith("https://kmipt.ru") for card in found.cards)

    question = await chat.send(text="Можно ли оплатить обучение материнским капиталом?")
    assert "Источник:" in question.text and "kmipt.ru" in question.text
    assert "##" not in question.text and "**" not in question.text  # Markdown flattened for chat

    unknown = await chat.send(text="Сколько стоит аренда космического корабля на Марсе?")
    assert "уточню у менеджера" in unknown.text
    assert "handoff" in [q.payload for q in unknown.quick_replies]

    program_id = found.cards[0].id
    consent = await chat.send(choice=f"program:{program_id}")
    assert [q.payload for q in consent.quick_replies] == ["consent:yes", "consent:no"]
    assert "согласие" in consent.text

    ask_phone = await chat.send(choice="consent:yes")
    assert Action.ask_contact in ask_phone.actions

    done = await chat.send(contact=SharedContact(phone="8 (999) 123-45-67", verified=True))
    assert done.lead_id is not None and f"№{done.lead_id}" in done.text

    again = await chat.send(text="+7 999 123 45 67")
    assert again.lead_id == done.lead_id  # the same user and phone within 24 h

    async with runtime.db.session() as session:
        leads = (await session.exec(select(Lead))).all()
        consents = (await session.exec(select(ConsentRecord))).all()
        outbox = (await session.exec(select(CrmOutbox))).all()
        messages = (await session.exec(select(Message))).all()
    assert len(leads) == 1
    lead = leads[0]
    assert lead.phone == "+79991234567" and lead.brand == "kmipt" and lead.channel == "telegram"
    assert lead.program_ids == [program_id] and lead.source == "vk_ads"
    assert lead.profile == {"grade": 11, "goal": "ege", "subject": "math", "format": "offline"}
    assert lead.crm_status == "skipped" and outbox == []  # CRM_PROVIDER=none
    assert [(c.granted, c.text_version, c.telegram_id) for c in consents] == [(True, "2026-11-01", 1001)]
    assert len(messages) == 2 * chat.update  # every user message and every reply, once


def _criteria(grade: int, goal: str, subject: str, fmt: str):
    from agent.catalog import SearchCriteria

    return SearchCriteria(grade=grade, goal=goal, subject=subject, format=fmt)


async def test_free_text_fills_the_funnel(runtime: Runtime) -> None:
    reply = await Chat(runtime).send(text="Ищем курс ЕГЭ по физике онлайн для 11 класса")
    assert reply.cards[0].id == "online-ege-physics-11"
    state = await runtime.store.load("telegram", "1001", "kmipt")
    assert state.profile.model_dump(include={"grade", "goal", "subject", "format"}) == {
        "grade": 11, "goal": "ege", "subject": "physics", "format": "online"
    }


async def test_typed_answers_and_a_question_on_the_way_to_a_lead(runtime: Runtime) -> None:
    """A question naming a funnel value is answered, and the funnel does not ask for that value again."""
    chat = Chat(runtime, user_id="31")
    await chat.send(start=True)
    asked = await chat.send(text="Есть ли скидки на математику?")
    assert "20 %" in asked.text and "Источник:" in asked.text and "учту: математика" in asked.text
    assert "grade:11" in [q.payload for q in asked.quick_replies]
    assert (await chat.send(text="11 класс")).text == "Какая цель занятий?"
    assert (await chat.send(text="ЕГЭ")).text == "Какой формат удобнее?"  # the subject is known already
    found = await chat.send(text="онлайн")
    assert found.cards and found.cards[0].id == "online-ege-math-11"
    consent = await chat.send(choice=f"program:{found.cards[0].id}")
    assert "consent:yes" in [q.payload for q in consent.quick_replies]
    await chat.send(choice="consent:yes")
    done = await chat.send(text="8 999 123-45-67")
    assert done.lead_id is not None
    async with runtime.db.session() as session:
        lead = (await session.exec(select(Lead))).one()
    assert lead.profile == {"grade": 11, "goal": "ege", "subject": "math", "format": "online"}
    assert lead.program_ids == ["online-ege-math-11"]


async def test_consent_refusal_keeps_no_contact(runtime: Runtime) -> None:
    chat = Chat(runtime, user_id="77")
    await chat.send(text="мой номер 89161112233, перезвоните")
    refused = await chat.send(choice="consent:no")
    assert "без согласия" in refused.text
    async with runtime.db.session() as session:
        assert (await session.exec(select(Lead))).all() == []
        consent = (await session.exec(select(ConsentRecord))).one()
    assert consent.granted is False


async def test_human_mode_silence_release_and_expiry(make_runtime: MakeRuntime) -> None:
    notifier = RecordingNotifier()
    runtime = await make_runtime(notifier=notifier)
    chat = Chat(runtime, user_id="5")
    handed = await chat.send(choice="handoff")
    assert Action.handoff in handed.actions and "помолчу" in handed.text
    assert len(notifier.handoffs) == 1 and notifier.handoffs[0].contact is None
    quiet = await chat.send(text="алло?")
    assert quiet.silent and quiet.text == ""
    assert runtime.assistant is not None and quiet.conversation_id is not None
    await runtime.assistant.release(quiet.conversation_id)
    assert not (await chat.send(text="снова здесь")).silent

    await chat.send(choice="handoff")
    assert (await chat.send(text="тишина")).silent
    later = runtime.assistant.clock() + timedelta(hours=25)
    runtime.assistant.clock = lambda: later
    assert not (await chat.send(text="прошли сутки")).silent


async def test_two_messages_of_one_user_never_run_together(runtime: Runtime) -> None:
    real = runtime.knowledge
    active: dict[str, int] = {}
    peak: dict[str, int] = {}

    class Tracking:
        def known_amounts(self, brand: str) -> set[int]:
            return real.known_amounts(brand)

        async def search(self, brand: str, query: str, *, limit: int = 3) -> KnowledgeResult:
            user = query.split()[0]
            active[user] = active.get(user, 0) + 1
            peak[user] = max(peak.get(user, 0), active[user])
            await asyncio.sleep(0.02)
            active[user] -= 1
            return await real.search(brand, query, limit=limit)

    runtime.assistant.knowledge = runtime.assistant.offline.knowledge = Tracking()
    a, b = Chat(runtime, user_id="10"), Chat(runtime, user_id="20")
    await asyncio.gather(*(chat.send(text=f"{chat.user_id} вопрос про оплату {i}") for chat in (a, b) for i in range(3)))
    assert peak == {"10": 1, "20": 1}


async def test_mini_app_and_bot_share_one_person(runtime: Runtime) -> None:
    await Chat(runtime, user_id="555", channel=Channel.telegram).send(choice="grade:9")
    reply = await Chat(runtime, user_id="555", channel=Channel.miniapp).send(choice="goal:oge")
    assert "предмет" in reply.text  # the grade chosen in the bot is known in the Mini App


async def test_handoff_command_is_idempotent_and_notifies_once(make_runtime: MakeRuntime) -> None:
    from agent.errors import NotFound
    from agent.types import Inbound

    notifier = RecordingNotifier()
    runtime = await make_runtime(notifier=notifier)
    chat = Chat(runtime, user_id="900")
    await chat.send(contact=SharedContact(phone="+79990001122", verified=True))
    await chat.send(choice="consent:yes")  # consent and phone: the manager may see the contact
    assert runtime.assistant is not None
    command = Inbound(channel=Channel.telegram, user_id="900", first_name="Анна", idempotency_key="tg:manager-1")
    first = await runtime.assistant.handoff(command, "/manager")
    again = await runtime.assistant.handoff(command, "/manager")
    assert first == again and Action.handoff in first.actions
    assert [(n.reason, n.contact, n.user_display) for n in notifier.handoffs] == [("/manager", "+79990001122", "Анна")]
    with pytest.raises(NotFound):
        await runtime.assistant.release(10_000)
