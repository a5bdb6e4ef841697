"""The examples of issue 13, each through the real AssistantService (real catalog, knowledge base and
SQLite storage; the model faked at the HTTP seam where it answers)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import respx
from sqlmodel import select

from adapters.storage.models import Lead
from adapters.runtime import Runtime
from agent.types import Action, Channel, Reply
from tests import openai_fakes as fake
from tests.assistant_helpers import Chat, assistant_runtime

GRADE_KEYBOARD = "grade:5"


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await assistant_runtime(tmp_path)
    yield runtime
    await runtime.close()


def _payloads(reply: Reply) -> list[str]:
    return [q.payload for q in reply.quick_replies]


async def _leads(rt: Runtime) -> list[Lead]:
    async with rt.db.session() as session:
        return list((await session.exec(select(Lead))).all())


async def test_a_phone_with_a_question_gets_the_answer_and_the_consent_in_one_reply(rt: Runtime) -> None:
    chat = Chat(rt, user_id="501")
    reply = await chat.send(text="Мой номер +7 916 555-12-34. Сколько стоит ЕГЭ по физике онлайн?")
    assert "41 800 ₽" in reply.text  # the online ЕГЭ physics course from the catalog
    assert "согласие" in reply.text and _payloads(reply) == ["consent:yes", "consent:no"]
    assert "555-12-34" not in reply.text and "9165551234" not in reply.text
    done = await chat.send(choice="consent:yes")
    assert done.lead_id is not None
    (lead,) = await _leads(rt)
    assert lead.phone == "+79165551234"
    assert lead.profile == {"goal": "ege", "subject": "physics", "format": "online"}


async def test_the_name_is_stored_never_echoed_and_a_second_phone_is_a_note(rt: Runtime) -> None:
    chat = Chat(rt, user_id="502")
    await chat.send(choice="consent:yes")
    first = await chat.send(text="Меня зовут Ольга Иванова, телефон 8 916 123-45-67")
    assert first.lead_id is not None and "Ольга Иванова" not in first.text and "123-45-67" not in first.text
    second = await chat.send(text="Запишите ещё номер мужа 8 903 555-11-22, перезвоните после 18")
    assert second.lead_id == first.lead_id
    assert "903 ***-**-22" in second.text and "555-11-22" not in second.text
    (lead,) = await _leads(rt)  # never a second lead
    assert lead.name == "Ольга Иванова"
    assert "+79035551122" in (lead.manager_note or "") and "после 18" in (lead.manager_note or "")
    state = await rt.store.load("telegram", "502", "kmipt")
    assert state.profile.name == "Ольга Иванова"


@pytest.mark.parametrize(
    ("text", "wanted", "wrong"),
    [
        ("Когда начнутся занятия?", "учебный год", "зимн"),
        ("Летний лагерь 20–28 июля, есть места?", "наличие мест подтверждает менеджер", "зимн"),  # the summer shift
        ("Какая стоимость занятий за месяц?", "₽", "олимпиад"),
        ("сколько детей в группе?", "в группе", "класс —"),
        ("Группы большие?", "от 3 до 12 человек", "точного ответа"),
        ("в зимний лагерь места еще есть?", "наличие мест подтверждает менеджер", "гарантируем"),
        ("где вы находитесь?", "пацаева", "первомайская"),
        ("Где проходят занятия для 7 класса?", "красносельская", "первомайская"),
        ("У вас есть государственная аккредитация?", "лиценз", "не помогу"),
        # the price, not the discounts document; the total is the manager's (never computed here)
        ("сколько стоит зимний лагерь со скидкой 10%?", "93 600", "оплата за семестр"),
    ],
)
async def test_answers_come_from_the_right_document_and_are_short(rt: Runtime, text: str, wanted: str, wrong: str) -> None:
    reply = await Chat(rt, user_id="503").send(text=text)
    answer = reply.text.split("\n\nЕсли хотите, подберу")[0]
    assert wanted in answer.lower() and wrong not in answer.lower(), answer
    assert "##" not in reply.text and "Источник: https://kmipt.ru" in reply.text
    assert len(answer) <= 450
    if "скидк" in text:
        assert "рассчитает и подтвердит менеджер" in answer


@pytest.mark.parametrize(
    ("text", "expect_any"),
    [
        ("Здравствуйте", ["Здравствуйте"]),
        ("спасибо", ["Пожалуйста"]),
        ("подумаю", ["подумайте"]),
        ("дорого", ["Онлайн", "скидк", "пробн"]),
        ("без разницы", ["класс", "цель", "предмет", "формат"]),
        ("какая погода завтра?", ["не помогу"]),
    ],
)
async def test_everyday_messages_get_a_fitting_reply(rt: Runtime, text: str, expect_any: list[str]) -> None:
    chat = Chat(rt, user_id="504")
    if text == "дорого":
        await chat.send(text="11 класс, ЕГЭ по математике, очно")
    reply = await chat.send(text=text)
    assert "Точного ответа" not in reply.text
    assert any(phrase.lower() in reply.text.lower() for phrase in expect_any), reply.text
    assert len(reply.text) <= 600


async def test_price_objection_names_only_catalog_amounts(rt: Runtime) -> None:
    chat = Chat(rt, user_id="505")
    await chat.send(text="11 класс, ЕГЭ по математике, очно")
    reply = await chat.send(text="Дорого, есть дешевле?")
    known = rt.assistant._known_amounts("kmipt")  # what the guardrails allow
    amounts = [int(a.replace(" ", "").replace("\u00a0", "")) for a in __import__("re").findall(r"(\d[\d \u00a0]*)\s*₽", reply.text)]
    assert amounts and all(a in known for a in amounts)
    assert "contact:start" in _payloads(reply)


@pytest.mark.parametrize("channel", [Channel.api, Channel.miniapp, Channel.telegram])
@pytest.mark.parametrize("text", ["/manager", "позовите менеджера", "Можно живого человека?"])
async def test_a_request_for_a_person_is_a_handoff_in_every_channel(tmp_path: Path, channel: Channel, text: str) -> None:
    rt = await assistant_runtime(tmp_path)
    try:
        reply = await Chat(rt, user_id="506", channel=channel).send(text=text)
        assert Action.handoff in reply.actions and len(rt.notifier.handoffs) == 1
    finally:
        await rt.close()


async def test_an_urgent_topic_is_handed_over_with_empathy_and_holds(rt: Runtime) -> None:
    chat = Chat(rt, user_id="507")
    reply = await chat.send(text="Мы оплатили курс в сентябре, верните деньги, ребёнку не подходит")
    assert Action.handoff in reply.actions and rt.notifier.handoffs[0].reason.startswith("Срочная тема: refund")
    assert "Понимаю" in reply.text and reply.quick_replies == [] and reply.cards == []
    for later in ("понял", "так что по расписанию?"):
        assert (await chat.send(text=later)).silent  # the handoff holds through neutral turns


@pytest.mark.parametrize(
    "text",
    ["Можно ли вернуть деньги, если ребёнку не понравится?", "спишите занятие из-за болезни"],
)
async def test_not_urgent_service_questions_are_answered_without_the_grade_keyboard(rt: Runtime, text: str) -> None:
    reply = await Chat(rt, user_id="508").send(text=text)
    assert Action.handoff not in reply.actions and "Источник:" in reply.text
    assert GRADE_KEYBOARD not in _payloads(reply)


async def test_quick_replies_fit_the_state(rt: Runtime) -> None:
    chat = Chat(rt, user_id="509")
    assert GRADE_KEYBOARD in _payloads(await chat.send(text="Здравствуйте"))
    goal = await chat.send(choice="grade:8")
    assert "goal:any" in _payloads(goal)  # «Не важно» on goal, subject and format
    camp = await chat.send(choice="goal:camp")
    # Camps run in person only: the format step is skipped; subjects are offered, with «Не важно».
    assert "format:online" not in _payloads(camp) and "subject:any" in _payloads(camp)
    await chat.send(choice="consent:yes")
    await chat.send(text="8 916 700-10-20")
    after = await chat.send(text="Сколько стоит лагерь?")
    assert GRADE_KEYBOARD not in _payloads(after) and not any(p.startswith("goal:") for p in _payloads(after))
    client = Chat(rt, user_id="510")
    reply = await client.send(text="Мы уже учимся у вас, как перенести занятие?")
    assert GRADE_KEYBOARD not in _payloads(reply)


async def test_a_step_with_nothing_to_choose_is_not_asked(rt: Runtime) -> None:
    # Camps are for grades 5–10: for a 4th-grader the subject and format steps have no value to offer, and
    # asking them showed a question with the single button «Не важно».
    reply = await Chat(rt, user_id="514").send(text="ребенок 10 лет, интересует лагерь")
    assert [q.label for q in reply.quick_replies] != ["Не важно"]
    assert "Какой предмет" not in reply.text and "Какой формат" not in reply.text


@pytest.mark.parametrize(
    ("first", "question", "said"),
    [
        # «мы в Подольске» says who asks: the town no document names made the question «unknown»
        ("Сын в 9м, оге по матем", "а онлайн можно? мы в Подольске", "Да, онлайн-занятия есть."),
        # grades 1–4 have no online groups (the catalog says so): never «yes», the format is not recorded
        ("2 класс", "а онлайн можно?", "Онлайн-групп для этого запроса нет"),
    ],
)
async def test_a_question_about_the_format_is_answered_from_the_catalog(rt: Runtime, first: str, question: str, said: str) -> None:
    chat = Chat(rt, user_id="515")
    await chat.send(text=first)
    reply = await chat.send(text=question)
    assert reply.text.startswith(said) and "Точного ответа" not in reply.text, reply.text
    state = await rt.store.load("telegram", "515", "kmipt")
    assert state.profile.format == ("online" if said.startswith("Да") else None)


async def test_program_buttons_are_unique_and_readable(rt: Runtime) -> None:
    chat = Chat(rt, user_id="511")
    reply = await chat.send(text="11 класс, интенсив")
    for _ in range(3):
        if reply.cards:
            break
        reply = await chat.send(choice=[q.payload for q in reply.quick_replies if q.payload.endswith(":any")][0])
    labels = [q.label for q in reply.quick_replies if q.payload.startswith("program:")]
    assert labels and len(set(labels)) == len(labels) and all(len(label) <= 40 for label in labels)


async def test_a_mention_of_intensive_does_not_overwrite_the_goal(rt: Runtime) -> None:
    chat = Chat(rt, user_id="512")
    await chat.send(text="10 класс, ЕГЭ по физике")
    await chat.send(text="А интенсив у вас бывает? Сколько он длится?")
    await chat.send(text="А на Физтех готовите?")
    state = await rt.store.load("telegram", "512", "kmipt")
    assert state.profile.goal == "ege"


async def test_withdrawal_is_asked_to_confirm_in_any_channel(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="513", channel=Channel.api).send(text="Удалите мои данные, пожалуйста")
    assert _payloads(reply) == ["forget:yes", "forget:no"] and "Удалить" in reply.text


async def test_model_mode_answers_the_question_next_to_a_phone(tmp_path: Path) -> None:
    rt = await assistant_runtime(tmp_path, model=True)
    try:
        with respx.mock(base_url=fake.BASE_URL) as api:
            route = api.post("/responses").mock(
                side_effect=[fake.response(fake.answer("ЕГЭ по физике онлайн идёт раз в неделю, подробности в карточке."))]
            )
            reply = await Chat(rt, user_id="514").send(text="Мой номер +7 916 555-12-34. Как проходит ЕГЭ по физике онлайн?")
        sent = json.loads(route.calls[0].request.content)
        assert "555-12-34" not in json.dumps(sent, ensure_ascii=False)  # masked for the model
        assert "## В этом сообщении пользователь дал" in sent["instructions"]
        assert reply.engine == "model" and reply.text.startswith("ЕГЭ по физике онлайн")
        assert _payloads(reply) == ["consent:yes", "consent:no"]  # the consent step follows in the same reply
    finally:
        await rt.close()
