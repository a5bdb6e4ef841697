"""The offline policy on its own (real catalog and knowledge base, no storage): a question that names a
funnel value is answered from the knowledge base, a bare answer moves the funnel on."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from adapters.knowledge.local import LocalKnowledge
from agent.catalog import SearchCriteria, load_catalog
from agent.funnel import apply_hints
from agent.intents import load_intents
from agent.offline import OfflinePolicy
from agent.understanding import hints_in, understand
from agent.state import ConversationState
from agent.types import Reply

REPO = Path(__file__).resolve().parent.parent
TODAY = date(2026, 9, 1)
INTENTS = load_intents(REPO / "prompts" / "intents.yaml")


def is_question(text: str) -> bool:
    return INTENTS.asks(text)


async def _respond(policy: OfflinePolicy, state: ConversationState, text: str) -> Reply:
    return await policy.respond(state, understand(text, INTENTS), today=TODAY, brand_name="УНПК МФТИ")


@pytest.fixture(scope="module")
def policy() -> OfflinePolicy:
    return OfflinePolicy(load_catalog(REPO / "catalog"), LocalKnowledge.from_directory(REPO / "knowledge"), INTENTS)


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
    reply = await _respond(policy, state, text)
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
    await _respond(policy, state, "Сколько стоит лагерь и что входит в стоимость?")
    after_grade = await _respond(policy, state, "8 класс")
    assert "Источник" not in after_grade.text
    assert after_grade.text == "Какой предмет интересует?"  # the goal (camp) is not asked again
    assert _slots(state) == {"grade": 8, "goal": "camp"}


async def test_a_question_that_completes_the_funnel_gets_the_answer_and_the_programs(policy: OfflinePolicy) -> None:
    state = _state()
    text = "Сколько стоит очная подготовка к ЕГЭ по физике для 10 класса?"
    reply = await _respond(policy, state, text)
    top = _top(policy, grade=10, goal="ege", subject="physics", format="offline")
    # A price question naming a course is answered from the catalog: that course, its price and start.
    assert [c.id for c in reply.cards] == top[:1] and reply.cards[0].price_text in reply.text
    assert _slots(state) == {"grade": 10, "goal": "ege", "subject": "physics", "format": "offline"}
    assert f"program:{top[0]}" in _payloads(reply)


async def test_a_question_after_the_programs_keeps_the_profile(policy: OfflinePolicy) -> None:
    """A question that merely names a value («онлайн», «интенсив») is answered; it does not overwrite
    what the user chose, and a bare answer still does."""
    state = _state()
    shown = await _respond(policy, state, "11 класс, ЕГЭ по математике, очно")
    assert shown.cards
    asked = await _respond(policy, state, "А можно заниматься онлайн?")
    assert "Источник:" in asked.text and state.profile.format == "offline" and asked.cards == []
    await _respond(policy, state, "А интенсив у вас есть?")
    assert state.profile.goal == "ege"
    changed = await _respond(policy, state, "онлайн")
    online = _top(policy, grade=11, goal="ege", subject="math", format="online")
    assert state.profile.format == "online" and [c.id for c in changed.cards] == online


async def test_bare_answers_walk_the_funnel_to_the_top_three(policy: OfflinePolicy) -> None:
    state = _state()
    steps = [
        ("11 класс", "Какая цель занятий?", "goal:ege"),
        ("ЕГЭ", "Какой предмет интересует?", "subject:math"),
        ("математика", "Какой формат удобнее?", "format:online"),
    ]
    for text, asked, button in steps:
        reply = await _respond(policy, state, text)
        assert reply.text == asked and button in _payloads(reply)
    found = await _respond(policy, state, "онлайн")
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
        ("Где занимаются 1-4 классы?", None),
        ("группы для 5–8 классов", None),
        ("сын в 4 классе, а где занимаются 1–4 классы?", 4),
    ],
)
def test_grade_in_words(text: str, grade: int | None) -> None:
    state = _state()
    changed = apply_hints(state, hints_in(text), overwrite=True)
    assert state.profile.grade == grade and ("grade" in changed) == (grade is not None)


def test_programs_without_an_exact_match_name_the_manager_before_the_cards(policy: OfflinePolicy) -> None:
    """ЕГЭ physics online for the 10th grade is not in the catalog: the reply says so and names the
    manager first, and its last line leads straight to the close matches shown as cards."""
    state = _state()
    state.profile.grade, state.profile.goal, state.profile.subject, state.profile.format = 10, "ege", "physics", "online"
    reply = policy.show_programs(state, today=TODAY)
    assert reply.text.startswith("Точного совпадения нет") and "менеджер" in reply.text
    assert reply.text.endswith("близкие варианты:") and reply.cards
    assert [card.id for card in reply.cards] == _top(policy, grade=10, goal="ege", subject="physics", format="online")


async def test_a_second_question_without_a_subject_keeps_the_first_ones(policy: OfflinePolicy) -> None:
    """«что входит в стоимость?» after «Сколько стоит лагерь»: about the camp, not the yearly course."""
    reply = await _respond(policy, _state(), "Сколько стоит лагерь и что входит в стоимость?")
    assert "99 750" in reply.text
    assert "35 занятий" not in reply.text  # what the yearly course includes
