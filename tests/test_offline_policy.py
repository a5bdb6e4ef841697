"""The offline policy on its own (real catalog and knowledge base, no storage): a question that names a
funnel value is answered from the knowledge base, a bare answer moves the funnel on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from adapters.knowledge.local import LocalKnowledge
from agent.catalog import SearchCriteria, load_catalog
from agent.funnel import apply_text_hints
from agent.offline import OfflinePolicy, is_question
from agent.state import ConversationState
from agent.types import Reply

REPO = Path(__file__).resolve().parent.parent
TODAY = date(2026, 9, 1)


@pytest.fixture(scope="module")
def policy() -> OfflinePolicy:
    return OfflinePolicy(load_catalog(REPO / "catalog"), LocalKnowledge.from_directory(REPO / "knowledge"))


def _state() -> ConversationState:
    return ConversationState(conversation_id=1, user_id=1, brand="kmipt", identity="telegram:1", external_id="1")


def _slots(state: ConversationState) -> dict[str, object]:
    return state.profile.model_dump(include={"grade", "goal", "subject", "format"}, exclude_none=True)


def _top(policy: OfflinePolicy, **criteria: object) -> list[str]:
    """The program ids the catalog itself ranks first for these criteria."""
    result = policy.catalog.search("kmipt", SearchCriteria(**criteria), today=TODAY)  # type: ignore[arg-type]
    return [card.id for card in result.items]


def _payloads(reply: Reply) -> list[str]:
    return [q.payload for q in reply.quick_replies]


@pytest.mark.parametrize(
    ("text", "slots", "answer_phrases", "noted"),
    [
        ("Сколько стоит лагерь и что входит в стоимость?", {"goal": "camp"}, ["₽", "лагер"], "учту: лагерь."),
        ("Можно ли заниматься онлайн из другого города?", {"format": "online"}, ["из любого города"], "учту: онлайн."),
        ("Есть ли скидки на математику?", {"subject": "math"}, ["20 %", "второй"], "учту: математика."),
        ("Скидки на математику", {"subject": "math"}, ["20 %", "второй"], "учту: математика."),
    ],
)
async def test_a_question_with_a_funnel_word_is_answered_from_the_knowledge_base(
    policy: OfflinePolicy, text: str, slots: dict[str, object], answer_phrases: list[str], noted: str
) -> None:
    state = _state()
    reply = await policy.respond(state, text=text, today=TODAY)
    answer, _, follow_up = reply.text.partition("\n\nИсточник: ")
    assert follow_up, f"no knowledge-base answer: {reply.text!r}"
    for phrase in answer_phrases:
        assert phrase in answer
    # The slots it named are kept, said back, and the funnel goes on with the first open step.
    assert _slots(state) == slots
    assert noted in follow_up and follow_up.rstrip().endswith("В каком классе учится ребёнок?")
    assert _payloads(reply)[:2] == ["grade:1", "grade:2"]
    assert reply.cards == []


async def test_the_funnel_skips_what_a_question_already_said(policy: OfflinePolicy) -> None:
    state = _state()
    await policy.respond(state, text="Сколько стоит лагерь и что входит в стоимость?", today=TODAY)
    after_grade = await policy.respond(state, text="8 класс", today=TODAY)
    assert "Источник" not in after_grade.text
    assert after_grade.text == "Какой предмет интересует?"  # the goal (camp) is not asked again
    assert _slots(state) == {"grade": 8, "goal": "camp"}


async def test_a_question_that_completes_the_funnel_gets_the_answer_and_the_programs(policy: OfflinePolicy) -> None:
    state = _state()
    text = "Сколько стоит очная подготовка к ЕГЭ по физике для 10 класса?"
    reply = await policy.respond(state, text=text, today=TODAY)
    assert "Источник:" in reply.text and "Вот программы, которые подходят:" in reply.text
    assert _slots(state) == {"grade": 10, "goal": "ege", "subject": "physics", "format": "offline"}
    assert [c.id for c in reply.cards] == _top(policy, grade=10, goal="ege", subject="physics", format="offline")
    assert reply.cards
    assert "contact:start" in _payloads(reply)


async def test_a_question_after_the_programs_that_changes_a_slot_shows_new_programs(policy: OfflinePolicy) -> None:
    state = _state()
    shown = await policy.respond(state, text="11 класс, ЕГЭ по математике, очно", today=TODAY)
    asked = await policy.respond(state, text="А можно заниматься онлайн?", today=TODAY)
    assert "Источник:" in asked.text and state.profile.format == "online"
    online = _top(policy, grade=11, goal="ege", subject="math", format="online")
    assert [c.id for c in asked.cards] == online != [c.id for c in shown.cards]
    same = await policy.respond(state, text="Можно ли оплатить материнским капиталом?", today=TODAY)
    assert same.cards == [] and "contact:start" in _payloads(same)  # nothing changed: no repeat of the cards


async def test_bare_answers_walk_the_funnel_to_the_top_three(policy: OfflinePolicy) -> None:
    state = _state()
    steps = [
        ("11 класс", "Какая цель занятий?", "goal:ege"),
        ("ЕГЭ", "Какой предмет интересует?", "subject:math"),
        ("математика", "Какой формат удобнее?", "format:online"),
    ]
    for text, asked, button in steps:
        reply = await policy.respond(state, text=text, today=TODAY)
        assert reply.text == asked and button in _payloads(reply)
    found = await policy.respond(state, text="онлайн", today=TODAY)
    assert "Источник" not in found.text and 1 <= len(found.cards) <= 3
    assert found.cards[0].id == "online-ege-math-11"
    assert _payloads(found)[-3:] == ["contact:start", "handoff", "restart"]


@pytest.mark.parametrize(
    "text",
    [
        "Сколько стоит лагерь и что входит в стоимость?",
        "Можно ли заниматься онлайн из другого города?",
        "Есть ли скидки на математику?",
        "скидка на математику",
        "что входит в стоимость лагеря",
        "Как проходят онлайн-занятия",
        "Когда начинаются занятия по физике",
        "Где проходят очные занятия",
        "Какие есть курсы для 9 класса",
        "Оплата маткапиталом для 10 класса",
    ],
)
def test_questions_are_told_from_answers(text: str) -> None:
    assert is_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "11 класс",
        "онлайн",
        "математика",
        "Лагерь",
        "Математика, лучше онлайн",
        "Ищем курс ЕГЭ по физике онлайн для 11 класса",
        "Здравствуйте! Сыну нужна подготовка к ЕГЭ",
        "Сын в 7 классе, очень любит математику, хотим заниматься олимпиадами",
        "Запишите меня на пробное по информатике, я в 8 классе, лучше онлайн",
        "Онлайн, так как живём далеко",
    ],
)
def test_bare_answers_are_not_questions(text: str) -> None:
    assert not is_question(text)


@pytest.mark.parametrize(
    ("text", "grade"),
    [
        ("лагерь для восьмиклассника", 8),
        ("дочь — третьеклассница", 3),
        ("сын в седьмом классе", 7),
        ("одиннадцатиклассник, ЕГЭ", 11),
        ("она в 10-м классе", 10),
        ("второй предмет со скидкой", None),
    ],
)
def test_grade_in_words(text: str, grade: int | None) -> None:
    state = _state()
    changed = apply_text_hints(state, text)
    assert state.profile.grade == grade and ("grade" in changed) == (grade is not None)
