"""The right section, not its neighbour: parents' questions whose key is a question word («где», «в какие
дни», «во сколько»), a list too long to show whole, several questions in one message, a price asked by
grade only. Each through the real assistant on the offline policy (real catalog and knowledge base)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.runtime import Runtime
from agent.answers import best_sentence, search_query, shorten, with_earlier_subject
from agent.types import Channel
from tests.assistant_helpers import Chat, assistant_runtime


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await assistant_runtime(tmp_path)
    yield runtime
    await runtime.close()


@pytest.mark.parametrize(
    ("text", "wanted", "neighbour"),
    [
        # the timetable, not «Условия бесплатного пробного занятия» or «Сколько раз в неделю»
        ("В какие дни занятия в Долгопрудном?", "воскресень", "пробное"),
        # the documents for the camp trip (079/у), not the camp's summary
        ("Какие справки нужны в лагерь?", "079", "99 750"),
        # the weekday online line of the timetable, although it is the last one of a long list
        ("Онлайн занятия бывают в будни?", "18:00", "SohoLMS"),
        # a bare «во сколько?» asks for the time of day: the timetable, not «Сколько раз в неделю»
        ("по будням онлайн есть занятия? во сколько?", "18:00", "раз в неделю"),
        ("во сколько начинаются занятия на Пацаева?", "10:00–11:20", "раз в неделю"),
        # «когда занятия» asks for the days: the timetable, not «Когда начались занятия»
        ("Когда занятия у младших школьников на Пацаева?", "суббота", "стартовал"),
        # …while the start of the year is asked for with «начинаются»
        ("когда занятия начинаются в этом году?", "стартовал", "10:00–11:20"),
        # the addresses, not «Как записаться» of the trial-lesson document
        ("А где проходят занятия?", "Долгопрудн", "пробн"),
        # group size, not the online format's description
        ("Сколько учеников в онлайн-группе?", "12–15", "вебинар"),
        # the ways to pay, not «После оплаты»
        ("Как можно оплатить?", "QR", "чек"),
        # the sites, not «Сколько занятий в году»
        ("Есть ли занятия в Москве?", "Москв", "35 занятий"),
        # the missed lesson's payment (a medical certificate), not the recordings section next to it
        ("спишите занятие из-за болезни", "095", "в записи"),
        # pausing the course, not monthly payment
        ("Можно заморозить обучение на месяц?", "заморо", "помесячн"),
        # where the parent lives is no filter on the answer («мы из Новосибирска»)
        ("Время занятий московское? мы из Новосибирска", "московск", "Точного ответа"),
        # the results section says first what nobody guarantees
        ("Вы гарантируете 90 баллов на ЕГЭ?", "не гарантир", "Точного ответа"),
    ],
)
async def test_the_question_word_finds_its_section(rt: Runtime, text: str, wanted: str, neighbour: str) -> None:
    reply = await Chat(rt, user_id="950").send(text=text)
    assert wanted in reply.text and neighbour not in reply.text, reply.text


async def test_a_timetable_line_asked_beside_another_question_is_shown(rt: Runtime) -> None:
    """Two questions share the reply's length: the weekday online line is shown rather than only the
    timetable's introduction, which left no room for it."""
    reply = await Chat(rt, user_id="952").send(text="домашку у вас проверяют? и во сколько занятия онлайн по будням?")
    assert "проверяются" in reply.text and "18:00" in reply.text, reply.text


async def test_a_question_marked_without_a_question_word_is_answered_beside_a_price(rt: Runtime) -> None:
    """«…онлайн? и домашку проверяют?»: the second question has no question word but its «?»; it was
    merged into the price question and only the price was answered."""
    reply = await Chat(rt, user_id="953").send(text="сколько стоит огэ по математике онлайн? и домашку проверяют?")
    assert "41 800 ₽" in reply.text and "проверяются" in reply.text, reply.text


async def test_a_price_and_a_trial_question_are_both_answered(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="951").send(text="Сколько стоит ЕГЭ по физике онлайн? И есть ли пробное занятие бесплатно?")
    assert "41 800 ₽" in reply.text and "пробн" in reply.text, reply.text


async def test_the_programs_question_next_to_another_is_answered(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="952").send(text="дочке 7 лет, что есть для первоклассников? и сколько детей в группе")
    assert "1–4 класс" in reply.text and "59 900 ₽" in reply.text and "7–8" in reply.text, reply.text


@pytest.mark.parametrize("text", ["цена за год для 3 класса", "Сколько стоят занятия для второклассника?"])
async def test_a_price_by_grade_alone_names_every_subject_once(rt: Runtime, text: str) -> None:
    reply = await Chat(rt, user_id="953").send(text=text)
    assert "59 900 ₽" in reply.text and reply.text.count("59 900 ₽") == 1, reply.text
    assert "нформатика" in reply.text and "математика" in reply.text.lower()


async def test_a_town_without_a_site_is_told_so_with_the_sites(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="954").send(text="а где вы находитесь, есть в Химках?")
    assert "нет" in reply.text and "Долгопрудн" in reply.text and "онлайн" in reply.text, reply.text
    assert "не помогу" not in reply.text


async def test_the_large_family_question_gets_the_siblings_discount(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="955").send(text="а есть скидки для многодетных?")
    assert "10 %" in reply.text and "многодет" in reply.text, reply.text


def test_a_cut_answer_ends_at_a_line_or_sentence_never_at_an_abbreviation() -> None:
    timetable = (
        "- Долгопрудный, главный корпус МФТИ, по воскресеньям: 09:30–11:30, 11:45–13:45.\n"
        "- Долгопрудный, пр. Пацаева: суббота — 10:00–11:20, 11:30–12:50; воскресенье — 10:00–11:20."
    )
    assert shorten(timetable, 120) == timetable.splitlines()[0]  # not «…Долгопрудный, пр.»
    said = "Площадка на ул. Сретенка — рядом с метро. Вход со двора, второй этаж, кабинет справа"
    assert shorten(said, 60) == "Площадка на ул. Сретенка — рядом с метро."


async def test_one_line_for_several_courses_keeps_their_names_readable(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="956").send(text="сколько стоит ЕГЭ онлайн для 11 класса?")
    assert "41 800 ₽" in reply.text and "егэ" not in reply.text, reply.text  # «ЕГЭ по физике», not «егэ по физике»


@pytest.mark.parametrize(
    ("text", "wanted", "other_season"),
    [("Сколько стоит зимняя выездная школа?", "93 600 ₽", "июл"), ("сколько стоит летний лагерь?", "99 750 ₽", "январ")],
)
async def test_a_camp_price_is_the_asked_seasons(rt: Runtime, text: str, wanted: str, other_season: str) -> None:
    reply = await Chat(rt, user_id="957").send(text=text)
    assert wanted in reply.text and other_season not in reply.text, reply.text


async def test_an_answer_that_says_press_the_manager_button_offers_it(rt: Runtime) -> None:
    reply = await Chat(rt, user_id="958", channel=Channel.api).send(text="как с вами связаться?")
    assert "Позвать менеджера" in reply.text and "handoff" in [q.payload for q in reply.quick_replies], reply


@pytest.mark.parametrize(
    ("question", "query"),
    [
        ("Мы в Подольске, а онлайн можно?", ", а онлайн можно?"),  # who asks: not a search word
        ("а онлайн можно? мы в Подольске", "а онлайн можно?"),
        ("мы в Менделеево ходим, какое расписание?", "мы в Менделеево ходим, какое расписание?"),  # the school's place stays
    ],
)
def test_the_town_that_says_who_asks_is_not_searched(question: str, query: str) -> None:
    assert search_query(question) == query


def test_the_best_sentence_is_whole_and_says_something() -> None:
    """The price objection's lines: a heading that only leads into a list is never picked, and a sentence
    runs past an address abbreviation («пр. Пацаева») to its real end."""
    passage = (
        "## Условия бесплатного пробного занятия\n\n"
        "- Бесплатное пробное занятие проходит только в Долгопрудном: в главном корпусе МФТИ (5–11 классы) "
        "и на пр. Пацаева (1–4 классы).\n- Нужна предварительная запись."
    )
    assert best_sentence(passage, ["бесплатное", "пробное", "занятие"]) == (
        "Бесплатное пробное занятие проходит только в Долгопрудном: в главном корпусе МФТИ (5–11 классы) "
        "и на пр. Пацаева (1–4 классы)."
    )


def test_a_question_without_a_subject_takes_the_earlier_ones() -> None:
    assert with_earlier_subject("что входит в стоимость", "Сколько стоит лагерь") == "что входит в стоимость лагер"
    assert with_earlier_subject("какие документы нужны", "сколько стоит зимний лагерь") == "какие документы нужны лагер зим"
    # its own subject stands
    assert with_earlier_subject("а олимпиадная группа?", "Сколько стоит лагерь") == "а олимпиадная группа?"
    assert with_earlier_subject("и домашку проверяют", "сколько стоит огэ онлайн") == "и домашку проверяют"
