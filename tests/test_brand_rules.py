"""The school's rules as data (catalog/<brand>.rules.yaml): the schema, the matching, the prompt section,
and the enforcement on every reply and button, offline and with a model that tries to break them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import respx
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from agent.brand_rules import RulesFileError, load_brand_rules, normalize, read_rules_file, term_pattern
from agent.catalog import read_catalog
from agent.rules_guard import RulesGuard, _amount_pattern
from agent.types import Reply
from tests import openai_fakes as fake
from tests.assistant_helpers import Chat, RecordingNotifier, model_runtime
from tests.conftest import REPO

DEMO = REPO / "tests" / "data"
KMIPT = RulesGuard(load_brand_rules(REPO / "catalog", "kmipt"))
DEMO_RULES = RulesGuard(load_brand_rules(DEMO / "catalog", "demo"))

# What the pre-2026 content made the assistant say (contradictions rows 1, 5, 11, 28, 35; F168).
FORBIDDEN_IN_KMIPT = ["МТС Линк", "МТС-Линк", "Скорняжн", "Фотон", "ЦДПО", "cdpofoton", "500-25-88",
                      "18 800", "34 400", "120 000", "89 900", "31 350", "27 540", "22 500", "КНД", "АНО ДПО"]
FORBIDDEN_IN_DEMO = ["УНПК", "kmipt", "500-81-51", "SohoLMS"]


def everything_shown(reply: Reply) -> str:
    cards = [" ".join([c.title, c.price_text, c.next_start_text, c.why_match, *c.usp]) for c in reply.cards]
    buttons = [f"{q.label} {q.payload}" for q in reply.quick_replies]
    return "\n".join([reply.text, *cards, *buttons])


def assert_clean(reply: Reply, forbidden: list[str]) -> None:
    shown = everything_shown(reply).casefold()
    found = [term for term in forbidden if term.casefold() in shown]
    assert not found, f"{found} in {everything_shown(reply)!r}"


# ---------------------------------------------------------------- the rules file and its schema


def test_kmipt_rules_cover_the_brief() -> None:
    rules = KMIPT.rules
    assert rules.sister_brand is not None and "Фотон" in rules.sister_brand.names
    assert {"cdpofoton.ru", "edu@cdpofoton.ru", "@cdpoFoton"} <= {*rules.sister_brand.sites, *rules.sister_brand.emails, *rules.sister_brand.handles}
    assert {t.id for t in rules.handoff_topics} == {
        "refund_after_payment", "disputed_charge", "paid_no_access", "complaint", "child_safety", "legal_threat",
        "not_served_sites", "individual_lessons",
    }
    assert {p.id for p in rules.never_compute} == {"discounted_total", "refund_amount", "instalment_schedule"}
    assert {p.id for p in rules.never_promise} >= {"seat", "access_now", "call_tomorrow"}
    assert {b.id for b in rules.obsolete} >= {"skornyazhny", "old_platform"}
    assert {18800, 34400, 120000, 89900, 31350} <= {w.amount for w in rules.withdrawn_amounts}


def _rules_file(tmp_path: Path, mutate: Any, brand: str = "demo") -> Path:
    raw = yaml.safe_load((DEMO / "catalog" / "demo.rules.yaml").read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / f"{brand}.rules.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "where", "text"),
    [
        (lambda r: r.update(colour="red"), "colour", "Extra inputs"),
        (lambda r: r["handoff_topics"][0].update(patterns=["re:(unclosed"]), "handoff_topics.0.patterns.0", "not a valid pattern"),
        (lambda r: r["sister_brand"].update(phones=["12-34"]), "sister_brand.phones.0", "fewer than 10 digits"),
        (lambda r: r.update(brand="other"), "brand", "must match the file name"),
    ],
)
def test_a_broken_rules_file_names_the_field(tmp_path: Path, mutate: Any, where: str, text: str) -> None:
    with pytest.raises(RulesFileError) as caught:
        read_rules_file(_rules_file(tmp_path, mutate), "demo")
    assert any(found == where and text in message for found, message in caught.value.problems), caught.value.problems


def test_a_brand_with_a_broken_rules_file_is_left_out(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "demo.yaml").write_text((DEMO / "catalog" / "demo.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    missing, issues = read_catalog(folder)
    assert missing.brand_ids() == ["demo"] and missing.rules("demo").sister_brand is None
    assert [(i.level, i.file, i.message) for i in issues] == [("warning", "demo.rules.yaml", "no brand rules file")]
    _rules_file(folder, lambda r: r.update(colour="red"))
    broken, issues = read_catalog(folder)
    assert broken.brand_ids() == []
    assert any(i.level == "error" and i.file == "demo.rules.yaml" and i.field == "colour" for i in issues)


# ---------------------------------------------------------------- matching


@pytest.mark.parametrize(
    "text",
    ["Мы работаем вместе с Фотоном", "сайт CDPOFOTON.RU", "звоните +7 495 500 25 88", "8(800)550-25-88",
     "в ЦРДО подскажут", "оформите «Долями»"],
)
def test_sister_brand_terms_are_found_however_written(text: str) -> None:
    assert any(hit.kind == "sister_brand" for hit in KMIPT.violations(text))


@pytest.mark.parametrize(
    ("text", "rule"),
    [("занятия в МТС-Линке", "old_platform"), ("в Скорняжном переулке", "skornyazhny"), ("MTS Link", "old_platform"),
     ("лицензия АНО ДПО «УНПК МФТИ»", "legal_entities"), ("справка КНД 1151158", "internal_codes")],
)
def test_obsolete_and_internal_terms_are_found(text: str, rule: str) -> None:
    assert rule in {hit.rule for hit in KMIPT.violations(text)}


def test_withdrawn_amounts_are_found_but_not_inside_bigger_numbers() -> None:
    assert {h.rule for h in KMIPT.violations("интенсив 18 800 ₽, два — 34400 руб.")} == {"18800", "34400"}
    assert KMIPT.violations("более 100 000 учеников, 10 900 ₽ в месяц, 36 900 ₽ за семестр") == []


_TRICKY = st.sampled_from(list("аАбвеёЁжкКлнЛоОпрсСтТуФфцЦМДxXkK_0123456789 .,-–\u00a0\u202f\n«»/@"))


def _lookbehind_first(pattern: str) -> str:
    """How the patterns were written before start-up was sped up: the «no word/number before» lookbehind
    in front (the reference the faster form must agree with)."""
    moved = re.compile(r"^(\w)\(\?<!\\w\.\)")
    if moved.match(pattern):
        return r"(?<!\w)" + moved.sub(r"\1", pattern)
    digits = re.match(r"^(\d+)\(\?<!\[\\d\.,\]\d+\)", pattern)
    if digits:
        return r"(?<![\d.,])" + digits.group(1) + pattern[digits.end():]
    return pattern


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_the_faster_patterns_match_exactly_where_the_lookbehind_first_ones_did(data: st.DataObject) -> None:
    term = data.draw(st.sampled_from(["Фотон", "МТС Линк", "ЦДПО", "cdpofoton.ru", "_x1", "КНД", "18 800", "ab"]))
    amount = data.draw(st.sampled_from([18800, 500, 1234567, 34400]))
    pieces = data.draw(st.lists(st.one_of(_TRICKY, st.sampled_from([term, f"{amount:,}".replace(",", " "), str(amount)])), max_size=30))
    text = normalize("".join(pieces))
    for fast in (term_pattern(term), _amount_pattern(amount)):
        flags = re.IGNORECASE if fast == term_pattern(term) else 0
        before = _lookbehind_first(fast)
        assert before != fast or not fast[:1].isalnum()
        spans = [m.span() for m in re.finditer(fast, text, flags)]
        assert spans == [m.span() for m in re.finditer(before, text, flags)], (fast, before, text)


@given(term=st.text(min_size=2, max_size=40).filter(lambda t: len(t.strip()) >= 2 and not t.strip().startswith("re:")))
@settings(max_examples=300, deadline=None)
def test_every_plain_term_makes_a_valid_pattern(term: str) -> None:
    """Only «re:» terms are compiled when the rules file is read (start-up): any other text must make a
    pattern that compiles, whatever characters it holds."""
    re.compile(term_pattern(term.strip()), re.IGNORECASE)


def test_current_facts_are_not_blocked() -> None:
    current = "Онлайн на платформе SohoLMS; Москва, ул. Сретенка, 20; 49 000 ₽ за первый семестр; Менделеево 99 750 ₽"
    assert KMIPT.violations(current) == []
    assert KMIPT.check(current).text == current


@pytest.mark.parametrize(
    ("message", "topic"),
    [
        ("Мы оплатили курс, хотим вернуть деньги", "refund_after_payment"),
        ("А если ребёнку не понравится, можно ли будет вернуть деньги?", None),  # before paying: not urgent
        ("У меня списали дважды за один курс!", "disputed_charge"),
        ("Оплатили вчера, а ссылка на занятие так и не пришла", "paid_no_access"),
        ("Хочу написать жалобу на преподавателя", "complaint"),
        ("Сына обижают в группе", "child_safety"),
        ("Подам в суд, если не решите", "legal_threat"),
        ("Есть ли занятия в Лобне?", "not_served_sites"),
        ("Нужны индивидуальные занятия по физике", "individual_lessons"),
        ("Сколько стоит ЕГЭ по математике?", None),
    ],
)
def test_handoff_topics_match_the_clients_message(message: str, topic: str | None) -> None:
    found = KMIPT.handoff_topic(message)
    assert (found.id if found else None) == topic


def test_each_brand_blocks_the_other() -> None:
    assert any(h.kind == "sister_brand" for h in DEMO_RULES.violations("Мы — часть УНПК МФТИ, пишите на edu@kmipt.ru"))
    assert DEMO_RULES.violations("Школа Демо в Твери") == []
    assert any(h.kind == "sister_brand" for h in KMIPT.violations("ЦДПО «Фотон» рядом"))


# ---------------------------------------------------------------- enforcement on a reply


def test_forbidden_terms_replace_the_reply_promises_and_sums_are_cut() -> None:
    sister = KMIPT.check("Да, мы партнёры с ЦДПО «Фотон».")
    assert sister.replaced and sister.text == KMIPT.rules.sister_brand.relationship_answer  # type: ignore[union-attr]
    platform = KMIPT.check("Занятия идут в МТС Линк.")
    assert platform.replaced and "SohoLMS" in platform.text and "МТС" not in platform.text
    bank = KMIPT.check("Можно оформить рассрочку через Т-Банк.")
    assert bank.replaced and bank.text.startswith("Банковской рассрочки в УНПК МФТИ нет")
    mixed = KMIPT.check("Курс стоит 49 000 ₽ за семестр. Со скидкой 20 % получится 39 200 ₽. Менеджер перезвонит вам завтра.")
    assert not mixed.replaced and mixed.text.startswith("Курс стоит 49 000 ₽ за семестр.")
    assert "39 200" not in mixed.text and "завтра" not in mixed.text
    assert "рассчитает и подтвердит менеджер" in mixed.text and "ежедневно с 10:00 до 18:00" in mixed.text
    honest = "Гарантировать место заранее я не могу, его подтверждает менеджер."
    assert KMIPT.check(honest).text == honest


def test_the_prompt_section_carries_the_rules() -> None:
    section = KMIPT.prompt_section
    assert section.startswith("## Правила школы")
    for expected in ("Фотон", KMIPT.rules.sister_brand.relationship_answer, "возврат денег после оплаты",  # type: ignore[union-attr]
                     "Лобня и Жуковский", "сумму возврата", "звонок «завтра»", "Скорняжный", "МТС Линк", "18 800"):
        assert expected in section
    assert "АНО ДПО" not in section and "1151158" not in section  # internal values are described, not listed
    assert "УНПК МФТИ" in DEMO_RULES.prompt_section


# ---------------------------------------------------------------- the questions that used to go wrong

OLD_QUESTIONS = [
    "На какой платформе проходят онлайн-занятия?",  # МТС Линк
    "Какой у вас адрес в Москве?",  # Скорняжный
    "Вы и Фотон — это одно и то же?",  # the sister brand
    "Сколько стоит ЕГЭ-интенсив перед экзаменом?",  # 18 800 / 34 400
    "Сколько стоит лагерь Менделеево?",  # 120 000 / 89 900
    "Сколько стоит онлайн-курс для 10 класса?",  # 31 350
    "Как получить справку для налогового вычета?",  # КНД, «3 дня»
]


@pytest.mark.parametrize("question", OLD_QUESTIONS)
async def test_offline_answers_to_the_old_questions_are_clean(runtime: Runtime, question: str) -> None:
    reply = await Chat(runtime).send(text=question)
    assert reply.engine == "offline" and reply.text
    assert_clean(reply, FORBIDDEN_IN_KMIPT)


@pytest.fixture
async def model_rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await model_runtime(tmp_path, notifier=RecordingNotifier())
    yield rt
    await rt.close()


# A model that repeats what the old content said, in text and in its buttons.
STUBBORN = [
    ("На какой платформе проходят онлайн-занятия?", "Онлайн-занятия проходят на платформе МТС Линк, все уроки записываются.",
     [{"label": "Открыть МТС Линк", "payload": "say:Как войти в МТС Линк?"}], "SohoLMS"),
    ("Какой у вас адрес в Москве?", "В Москве мы занимаемся на Чистых прудах, Скорняжный переулок.", [], "Сретенка, 20"),
    ("Вы и Фотон — это одно и то же?", "Да, мы партнёры с ЦДПО «Фотон», звоните им: 8 (495) 500-25-88.",
     [{"label": "Сайт cdpofoton.ru", "payload": "say:cdpofoton.ru"}], "разные организации"),
    ("Сколько стоит ЕГЭ-интенсив?", "Интенсив стоит 18 800 ₽ за предмет или 34 400 ₽ за два.", [], "менеджер"),
    ("Сколько стоит лагерь?", "Путёвка в Менделеево — 120 000 ₽, с ранней скидкой 89 900 ₽.", [], "менеджер"),
    ("Есть рассрочка?", "Есть рассрочка от Т-Банка или «Долями».",
     [{"label": "Оформить Долями", "payload": "say:Хочу Долями"}], "Банковской рассрочки"),
]


@pytest.mark.parametrize(("question", "said", "buttons", "instead"), STUBBORN)
async def test_a_model_reply_cannot_say_the_old_things(
    model_rt: Runtime, api: respx.MockRouter, question: str, said: str, buttons: list[dict[str, str]], instead: str
) -> None:
    route = api.post("/responses").mock(return_value=fake.response(fake.answer(
        said, quick_replies=[*buttons, {"label": "Подобрать курс", "payload": "say:Подберите курс"}]
    )))
    reply = await Chat(model_rt).send(text=question)
    assert reply.engine == "model"
    assert_clean(reply, FORBIDDEN_IN_KMIPT)
    assert instead in reply.text
    assert "say:Подберите курс" in [q.payload for q in reply.quick_replies]  # a clean button stays
    assert "handoff" in [q.payload for q in reply.quick_replies]  # a replaced reply offers a manager
    # The model was told the rules: the instructions carry the section built from the rules file.
    instructions = json.loads(route.calls[0].request.content)["instructions"]
    assert "## Правила школы" in instructions and "Фотон" in instructions and "SohoLMS" in instructions


async def test_the_demo_brand_never_names_kmipt(tmp_path: Path, api: respx.MockRouter) -> None:
    rt = await model_runtime(
        tmp_path, notifier=RecordingNotifier(), brand_default="demo", catalog_dir=str(DEMO / "catalog"),
        knowledge_dir=str(DEMO / "knowledge"),
    )
    settings = rt.settings
    try:
        route = api.post("/responses").mock(return_value=fake.response(fake.answer(
            "Мы — часть УНПК МФТИ: занятия на SohoLMS, пишите на edu@kmipt.ru или звоните 8 (800) 500-81-51."
        )))
        reply = await Chat(rt).send(text="Вы как-то связаны с УНПК МФТИ?")
        assert_clean(reply, FORBIDDEN_IN_DEMO)
        assert reply.text == DEMO_RULES.rules.sister_brand.relationship_answer  # type: ignore[union-attr]
        instructions = json.loads(route.calls[0].request.content)["instructions"]
        assert "Фотон" not in instructions and "Школа Демо" in instructions  # kmipt's rules stay with kmipt
    finally:
        await rt.close()
    offline_rt = build_runtime(settings.model_copy(update={"openai_api_key": None}))
    try:
        await offline_rt.db.migrate()
        offline = await Chat(offline_rt, user_id="2002").send(text="Как оплатить курс?")
        assert offline.engine == "offline" and "Школе Демо" in offline.text
        assert_clean(offline, FORBIDDEN_IN_DEMO)
    finally:
        await offline_rt.close()


async def test_working_hours_come_from_the_brands_catalog_block(tmp_path: Path) -> None:
    """The demo school answers on weekdays 09:00–20:00: its handoff says so, not kmipt's hours."""
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path, brand_default="demo", catalog_dir=str(DEMO / "catalog"), knowledge_dir=str(DEMO / "knowledge")
    )
    rt = build_runtime(settings, notifier=RecordingNotifier())
    try:
        await rt.db.migrate()
        reply = await Chat(rt, user_id="3003").send(choice="handoff")
        assert "по будням 09:00–20:00" in reply.text and "10:00–18:00" not in reply.text
    finally:
        await rt.close()
