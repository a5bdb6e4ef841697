"""The schema of catalog/<brand>.yaml: pydantic models that reject unknown keys."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

Goal = Literal["ege", "oge", "olympiad", "base", "intensive", "camp"]
Subject = Literal["math", "physics", "informatics", "russian"]
Format = Literal["online", "offline", "hybrid"]
# What one price pays for; a price without its period is how the old content drifted («36 900 ₽» of what?).
Period = Literal["semester", "year", "month", "shift", "course"]
# open: enrolling; confirm: places are confirmed by a manager; waitlist: no places, waiting list; closed.
Availability = Literal["open", "confirm", "waitlist", "closed"]

PROGRAM_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,63}$"
SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,31}$"
# A reference to a numbered fact of the school's approved fact sheet («F63»), or any source label.
FACT_PATTERN = r"^F\d{1,4}$"
Grade = Annotated[int, Field(ge=1, le=11)]
FactRef = Annotated[str, Field(pattern=FACT_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Session(_Strict):
    name: str = Field(min_length=1)
    start_date: date
    end_date: date | None = None
    provisional: bool = False  # the school calls these dates preliminary


class Price(_Strict):
    """One price of a program. Without ``label`` it is the regular price of its period; with one it is a
    special price shown as written («первый месяц 9 900 ₽ для новых учеников»)."""

    amount_rub: int = Field(gt=0)
    period: Period
    label: str | None = Field(default=None, min_length=1)  # e.g. «первый семестр», «первый месяц»
    condition: str | None = Field(default=None, min_length=1)  # e.g. «для новых учеников»
    provisional: bool = False
    on_card: bool = True  # False: known (may be quoted) but not shown on the short card text


class Site(_Strict):
    """A place where the brand teaches (or «online»), the grades it serves and when it runs."""

    id: str = Field(pattern=SITE_ID_PATTERN)
    name: str = Field(min_length=1)  # what a client reads: city, address, metro
    format: Literal["online", "offline"]
    grades: list[Grade] = Field(min_length=1)
    days: str = Field(min_length=1)


class Program(_Strict):
    id: str = Field(pattern=PROGRAM_ID_PATTERN)
    brand: str = Field(min_length=1)
    title: str = Field(min_length=1)
    url: HttpUrl
    goal: Goal
    grade_min: Grade
    grade_max: Grade
    subjects: list[Subject] = Field(min_length=1)
    format: Format
    sites: list[str] = Field(default_factory=list)  # ids of brand.sites; empty while the venue is not announced
    schedule: str | None = Field(default=None, min_length=1)  # days and times as a client reads them
    lesson: str | None = Field(default=None, min_length=1)  # length and rhythm of the lessons
    includes: list[str] = Field(default_factory=list)  # what the price pays for
    prices: list[Price] = Field(default_factory=list)  # empty: the price is given by a manager
    availability: Availability = "open"
    # Regular courses: one can join a running school year (the card says so instead of a start date).
    join_anytime: bool = False
    sessions: list[Session] = Field(min_length=1)
    usp: list[str] = Field(min_length=3, max_length=7)
    facts: list[FactRef] = Field(default_factory=list)  # the fact-sheet entries this card is built from
    checked_at: date
    source_url: HttpUrl


class BrandInfo(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,31}$")
    name: str = Field(min_length=1)
    domain: str = Field(min_length=3)
    manager_contact: str = Field(min_length=1)
    # When managers answer, as the texts say it: «ежедневно 10:00–18:00» (handoff, lead confirmations).
    working_hours: str = Field(min_length=1)
    facts: list[str] = Field(default_factory=list)
    sites: list[Site] = Field(default_factory=list)


class BrandCatalog(_Strict):
    brand: BrandInfo
    # Values written once and reused through YAML anchors (a price table, a timetable); not read directly.
    shared: dict[str, object] = Field(default_factory=dict)
    programs: list[Program] = Field(min_length=1)
