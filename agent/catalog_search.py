"""Ranking programs against what a family asked for, and the Russian texts of a program card.

The same function serves GET /api/catalog/search, the Mini App and the catalog_search tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.catalog_schema import Format, Goal, Period, Price, Program, Site, Subject
from agent.types import ProgramCard

MatchQuality = Literal["strong", "limited", "none"]
CARD_USP_LINES = 2  # the selling points after the card's fact lines (where, when, what is included)
PRICE_ON_REQUEST = "Стоимость уточнит менеджер"
START_WHEN_GROUP_FILLS = "Старт по мере набора группы"
JOIN_ANYTIME = "Учебный год идёт — можно присоединиться в любое время"
PROVISIONAL = "предварительно"
PERIOD_TEXT: dict[Period, str] = {
    "semester": "за семестр",
    "year": "за год",
    "month": "в месяц",
    "shift": "за смену",
    "course": "за курс",
}
AVAILABILITY_TEXT = {
    "confirm": "наличие мест подтверждает менеджер",
    "waitlist": "мест нет — лист ожидания",
    "closed": "набор закрыт",
}

GOAL_TEXT: dict[str, str] = {
    "ege": "подготовка к ЕГЭ",
    "oge": "подготовка к ОГЭ",
    "olympiad": "олимпиадная подготовка",
    "base": "регулярный курс",
    "intensive": "интенсив",
    "camp": "лагерь",
}
SUBJECT_TEXT: dict[str, str] = {
    "math": "математика",
    "physics": "физика",
    "informatics": "информатика",
    "russian": "русский язык",
}
FORMAT_TEXT: dict[str, str] = {"online": "онлайн", "offline": "очно", "hybrid": "гибридный формат"}


class SearchCriteria(BaseModel):
    """What the family told us; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    grade: int | None = Field(default=None, ge=1, le=11)
    goal: Goal | None = None
    subject: Subject | None = None
    format: Format | None = None

    def given(self) -> list[str]:
        return [name for name in ("grade", "goal", "subject", "format") if getattr(self, name) is not None]


class CatalogSearchResult(BaseModel):
    items: list[ProgramCard] = Field(default_factory=list)
    # strong: the first item meets every given criterion; limited: only some, or nothing was asked;
    # none: no program fits the child's grade or any criterion.
    match_quality: MatchQuality
    # True when criteria were given and no program meets them all: a manager can suggest more.
    manager_recommended: bool


def _rub(amount: int) -> str:
    return f"{amount:,}".replace(",", " ") + " ₽"


def _marked(text: str, provisional: bool) -> str:
    return f"{text} ({PROVISIONAL})" if provisional else text


def price_text(program: Program, today: date | None = None) -> str:
    """Every card price with its period: «от 36 900 ₽ за семестр · 82 000 ₽ за год · 10 900 ₽ в месяц ·
    первый месяц 9 900 ₽ для новых учеников». Regular prices of one period show their lowest («от»);
    labelled prices are shown as written; provisional ones are marked. (``today`` is kept for callers:
    prices are per program, not per session.)"""
    shown = [price for price in program.prices if price.on_card]
    if not shown:
        return PRICE_ON_REQUEST
    parts = []
    for period, period_text in PERIOD_TEXT.items():
        regular = [price for price in shown if price.period == period and price.label is None]
        if regular:
            low = min(price.amount_rub for price in regular)
            prefix = "от " if len({price.amount_rub for price in regular}) > 1 else ""
            parts.append(_marked(f"{prefix}{_rub(low)} {period_text}", any(p.provisional for p in regular)))
    parts += [_special_price(price) for price in shown if price.label is not None]
    return " · ".join(parts)


def _special_price(price: Price) -> str:
    text = f"{price.label} {_rub(price.amount_rub)}"
    if price.condition:
        text += f" {price.condition}"
    return _marked(text, price.provisional)


def next_start(program: Program, today: date) -> date | None:
    starts = [s.start_date for s in program.sessions if s.start_date >= today]
    return min(starts) if starts else None


def _running(program: Program, today: date) -> bool:
    return any(s.start_date <= today and (s.end_date is None or s.end_date >= today) for s in program.sessions)


def next_start_text(program: Program, today: date) -> str:
    """The next start date (marked when preliminary), or that a running year can be joined, and what a
    family must know about places («мест нет — лист ожидания»)."""
    if program.availability in ("waitlist", "closed"):
        return AVAILABILITY_TEXT[program.availability].capitalize()
    upcoming = [s for s in program.sessions if s.start_date >= today]
    if upcoming:
        first = min(upcoming, key=lambda s: s.start_date)
        text = _marked(first.start_date.strftime("%d.%m.%Y"), first.provisional)
    elif program.join_anytime and _running(program, today):
        text = JOIN_ANYTIME
    else:
        text = START_WHEN_GROUP_FILLS
    if program.availability == "confirm":
        text += f" · {AVAILABILITY_TEXT['confirm']}"
    return text


def fact_lines(program: Program, sites: dict[str, Site]) -> list[str]:
    """The card's fact lines: where and when, how long a lesson is, what the price includes."""
    lines = []
    places = [sites[site_id].name for site_id in program.sites if site_id in sites]
    if places:
        lines.append(f"Где: {'; '.join(places)}")
    when = "; ".join(part for part in (program.schedule, program.lesson) if part)
    if when:
        lines.append(f"Когда: {when}")
    if program.includes:
        lines.append(f"В стоимость входит: {', '.join(program.includes)}")
    return lines


def _meets(program: Program, criteria: SearchCriteria) -> dict[str, bool]:
    """Which of the given criteria the program meets. Hybrid counts as both online and offline."""
    met: dict[str, bool] = {}
    if criteria.grade is not None:
        met["grade"] = program.grade_min <= criteria.grade <= program.grade_max
    if criteria.goal is not None:
        met["goal"] = program.goal == criteria.goal
    if criteria.subject is not None:
        met["subject"] = criteria.subject in program.subjects
    if criteria.format is not None:
        met["format"] = program.format == criteria.format or program.format == "hybrid"
    return met


def _grades_text(program: Program) -> str:
    if program.grade_min == program.grade_max:
        return f"{program.grade_min} класс"
    return f"{program.grade_min}–{program.grade_max} классы"


def _criterion_texts(name: str, program: Program, criteria: SearchCriteria) -> tuple[str, str]:
    """(what to say when the program meets the criterion, what to say when it differs)."""
    if name == "grade":
        return f"{criteria.grade} класс", f"классы — в программе {_grades_text(program)}"
    if name == "goal":
        return GOAL_TEXT[program.goal], f"цель — здесь {GOAL_TEXT[program.goal]}"
    if name == "subject":
        subjects = ", ".join(SUBJECT_TEXT[s] for s in program.subjects)
        return SUBJECT_TEXT[criteria.subject or ""], f"предмет — здесь {subjects}"
    wanted = FORMAT_TEXT[criteria.format or ""]
    if program.format == "hybrid" and criteria.format != "hybrid":
        wanted += " (гибридный формат: очно и онлайн)"
    return wanted, f"формат — здесь {FORMAT_TEXT[program.format]}"


def why_match(program: Program, criteria: SearchCriteria, met: dict[str, bool]) -> str:
    """A Russian sentence naming which of the family's criteria the program meets and which it doesn't."""
    if not met:
        return f"Программа для учеников: {_grades_text(program)}; уточните класс и цель, чтобы подобрать точнее."
    matched: list[str] = []
    differs: list[str] = []
    for name, ok in met.items():
        match_text, differ_text = _criterion_texts(name, program, criteria)
        if ok:
            matched.append(match_text)
        else:
            differs.append(differ_text)
    sentence = f"Подходит по запросу: {', '.join(matched)}." if matched else "Совпадений с запросом мало."
    if differs:
        sentence += f" Отличается: {'; '.join(differs)}."
    return sentence


# Between programs meeting as many criteria, the goal matters most to a family, the format least.
CRITERION_WEIGHT = {"grade": 0, "goal": 3, "subject": 2, "format": 1}


def _rank_key(program: Program, met: dict[str, bool], criteria: SearchCriteria, today: date) -> tuple:
    start = next_start(program, today)
    return (
        -sum(met.values()),
        -sum(CRITERION_WEIGHT[name] for name, ok in met.items() if ok),
        program.grade_max - program.grade_min,  # a narrower grade range fits the child better
        criteria.format is not None and program.format != criteria.format,  # exact format before hybrid
        start is None,
        start or date.max,
        program.id,
    )


def to_card(
    program: Program, criteria: SearchCriteria, met: dict[str, bool], today: date, sites: dict[str, Site] | None = None
) -> ProgramCard:
    return ProgramCard(
        id=program.id,
        title=program.title,
        url=str(program.url),
        price_text=price_text(program, today),
        next_start_text=next_start_text(program, today),
        why_match=why_match(program, criteria, met),
        usp=[*fact_lines(program, sites or {}), *program.usp[:CARD_USP_LINES]],
    )


def rank_programs(
    programs: Sequence[Program],
    criteria: SearchCriteria,
    *,
    today: date,
    limit: int = 3,
    sites: dict[str, Site] | None = None,
) -> CatalogSearchResult:
    given = criteria.given()
    scored = []
    for program in programs:
        met = _meets(program, criteria)
        # A program for another grade never helps, whatever else it matches.
        if given and (met.get("grade") is False or not any(met.values())):
            continue
        scored.append((_rank_key(program, met, criteria, today), program, met))
    scored.sort(key=lambda entry: entry[0])
    top = scored[: max(limit, 0)]
    items = [to_card(program, criteria, met, today, sites) for _, program, met in top]
    if not given:
        return CatalogSearchResult(items=items, match_quality="limited" if items else "none", manager_recommended=False)
    if not items:
        return CatalogSearchResult(items=[], match_quality="none", manager_recommended=True)
    strong = all(top[0][2].values())
    return CatalogSearchResult(items=items, match_quality="strong" if strong else "limited", manager_recommended=not strong)
