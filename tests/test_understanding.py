"""One message understood whole (agent/understanding.py) and the decision table (agent/decide.py):
parents' messages as they write them, and what each must be read as."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.decide import Route, Situation, decide
from agent.intents import Intent, load_intents
from agent.understanding import understand

INTENTS = load_intents(Path(__file__).resolve().parent.parent / "prompts" / "intents.yaml")
NEW = Situation(lead_id=None, phone=None, funnel_open=True)


def test_a_phone_and_a_question_keep_both() -> None:
    message = understand("Мой номер +7 916 555-12-34. Сколько стоит ЕГЭ по физике онлайн?", INTENTS)
    assert message.phones == ("+79165551234",)
    assert message.question == "Сколько стоит ЕГЭ по физике онлайн?" and message.asks
    assert message.hints.steps() == {"goal": "ege", "subject": "physics", "format": "online"}
    assert decide(message, NEW) == decide(message, NEW).__class__(Route.contact, answer_rest=True)


@pytest.mark.parametrize(
    ("text", "note", "question"),
    [
        # the call time is a note for the manager; what is left asks nothing (it drew the off-topic reply)
        ("здраствуйте, можете перезвонить завтра утром? мой номер +7 916 555-12-34", "перезвонить завтра утром", ""),
        # the note stops at the comma: the question after it is answered, not swallowed into the note
        ("Добрый день! 89161234567 позвоните после 18, сколько стоит ЕГЭ по физике?", "позвоните после 18",
         "Добрый день!, сколько стоит ЕГЭ по физике?"),
    ],
)
def test_a_call_time_is_a_note_and_the_rest_is_kept(text: str, note: str, question: str) -> None:
    message = understand(text, INTENTS)
    assert message.note == note and message.question == question
    assert decide(message, NEW).answer_rest == bool(question)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Меня зовут Ольга, 89161234567", "Ольга"),
        ("Иванова Ольга 8 916 123 45 67", "Иванова Ольга"),
        ("Это Марина, мой телефон +79031112233", "Марина"),
        ("89161234567, Сергей", "Сергей"),
        ("8 916 123-45-67 перезвоните после 18", None),
        ("Здравствуйте, 89161234567", None),
    ],
)
def test_the_name(text: str, name: str | None) -> None:
    assert understand(text, INTENTS).name == name


@pytest.mark.parametrize(
    ("text", "grade", "subject"),
    [
        ("5 клас матиматика", 5, "math"),
        ("сыну 10 лет, нужна физика", 4, "physics"),
        ("дочке 7 лет", 1, None),
        ("в 7м классе, инфа", 7, "informatics"),
        ("восьмиклассник, алгебра", 8, "math"),
        ("перешла в девятый класс", 9, None),
        ("11кл, русский", 11, "russian"),
        ("Сколько стоит 2 часа занятий?", None, None),
    ],
)
def test_funnel_hints_with_typos(text: str, grade: int | None, subject: str | None) -> None:
    hints = understand(text, INTENTS).hints
    assert (hints.grade, hints.subject) == (grade, subject)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Здравствуйте!", Intent.greeting),
        ("Добрый день", Intent.greeting),
        ("спасибо!", Intent.thanks),
        ("Понятно, спасибо", Intent.thanks),
        ("подумаю", Intent.think),
        ("Нам надо посоветоваться с мужем", None),
        ("посоветуюсь с мужем и вернусь", Intent.think),
        ("не сейчас", Intent.think),
        ("дорого", Intent.price_objection),
        ("А есть что-то подешевле?", Intent.price_objection),
        ("почему так дорого?", Intent.price_objection),
        ("почему второй семестр дешевле первого?", None),  # how prices compare: answered from the documents
        ("Олимпиадная группа по математике дороже обычной?", None),
        ("позовите менеджера", Intent.person),
        ("/manager", Intent.person),
        ("Можно живого человека?", Intent.person),
        ("перезвоните мне", Intent.person),
        ("Вы бот или живой человек?", None),
        ("запишите на пробное", Intent.enrol),
        ("Хочу записаться на курс", Intent.enrol),
        ("Можно ли записаться в середине года?", None),
        ("без разницы", Intent.skip),
        ("не важно", Intent.skip),
        ("реши домашку по алгебре", Intent.offtopic),
        ("помогите сделать домашнее задание по физике", Intent.offtopic),
        ("домашку по алгебре реши", Intent.offtopic),
        ("какая завтра погода?", Intent.offtopic),
        ("удалите мои данные", Intent.forget),
        ("/forget", Intent.forget),
        ("Отзываю согласие на обработку данных", Intent.forget),
        ("мы уже учимся у вас", Intent.client),
        ("спишите занятие из-за болезни", Intent.service),
        ("Сколько я заплачу за два предмета со скидкой? посчитайте", Intent.compute),
        ("ок жду", Intent.thanks),
        ("хорошо, ждём", Intent.thanks),
    ],
)
def test_intents(text: str, intent: Intent | None) -> None:
    message = understand(text, INTENTS)
    if intent is None:
        assert not (message.intents & {Intent.person, Intent.enrol, Intent.think}), message.intents
    else:
        assert intent in message.intents


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Мы оплатили курс, верните деньги", "refund"),
        ("Хочу вернуть деньги за курс, оплатили в сентябре", "refund"),
        ("Деньги списали дважды!", "charge"),
        ("оплатили неделю назад, а ссылка на занятия так и не пришла", "access"),
        ("Преподаватель кричит на ребёнка, хочу пожаловаться", "complaint"),
        ("Сына толкнул другой ученик на перемене", "safety"),
        ("Буду писать в Роспотребнадзор", "legal"),
        ("подам в суд", "legal"),
        # Not urgent: a refund question before paying, a missed lesson through illness.
        ("Можно ли вернуть деньги, если ребёнку не понравится?", None),
        ("А если мы передумаем до начала, деньги вернёте?", None),
        ("спишите занятие из-за болезни", None),
        ("Сколько стоит курс?", None),
    ],
)
def test_urgent_topics(text: str, topic: str | None) -> None:
    urgent = understand(text, INTENTS).urgent
    assert (urgent.id if urgent else None) == topic


def test_a_second_phone_or_a_note_after_the_lead_is_a_note() -> None:
    after = Situation(lead_id=7, phone="+79161234567", funnel_open=False)
    assert decide(understand("вот ещё номер мужа 89035551122", INTENTS), after).route is Route.note
    assert decide(understand("перезвоните после 18, 89161234567", INTENTS), after).route is Route.note
    assert decide(understand("89161234567", INTENTS), after).route is Route.contact  # the same phone again


def test_the_table_order() -> None:
    # Urgent beats a phone: no data is collected in an urgent turn.
    urgent = decide(understand("Верните деньги, мы оплатили! 89161234567", INTENTS), NEW)
    assert urgent.route is Route.urgent and not urgent.store_contact
    assert decide(understand("удалите мои данные, 89161234567", INTENTS), NEW).route is Route.forget
    assert decide(understand("позовите менеджера", INTENTS), NEW).route is Route.person
    assert decide(understand("без разницы", INTENTS), NEW).route is Route.skip
    closed = Situation(lead_id=None, phone=None, funnel_open=False)
    assert decide(understand("без разницы", INTENTS), closed).route is Route.answer
    assert decide(understand("Сколько стоит?", INTENTS), NEW).route is Route.answer


@pytest.mark.parametrize(("text", "goal"), [("оге сдавать по матем", "oge"), ("еге по физике", "ege"), ("огэ", "oge")])
def test_exam_names_typed_with_e(text: str, goal: str) -> None:
    assert understand(text, INTENTS).hints.goal == goal


@pytest.mark.parametrize("text", [
    "домашку проверяют?", "Домашние задания проверяют?", "Много ли задают домашки?",
    "Выполнять домашние задания обязательно?", "Сколько времени решать домашку?", "Дети решают домашнее задание на занятии?",
])
def test_a_question_about_homework_is_not_off_topic(text: str) -> None:
    """Only a request to do the homework is off-topic; a parent asking whether it is checked asks about
    the courses (the documents answer: «Домашние задания проверяются всегда»)."""
    assert Intent.offtopic not in understand(text, INTENTS).intents
