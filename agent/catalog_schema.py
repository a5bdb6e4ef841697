"""The schema of catalog/<brand>.yaml: pydantic models that reject unknown keys."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

Goal = Literal["ege", "oge", "olympiad", "base", "intensive", "camp"]
Subject = Literal["math", "physics", "informatics", "russian"]
Format = Literal["online", "offline", "hybrid"]

PROGRAM_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,63}$"
Grade = Annotated[int, Field(ge=1, le=11)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Session(_Strict):
    name: str = Field(min_length=1)
    start_date: date
    end_date: date | None = None
    price_rub: int | None = Field(default=None, gt=0)


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
    locations: list[str] = Field(default_factory=list)  # empty while the venue is not announced
    sessions: list[Session] = Field(min_length=1)
    usp: list[str] = Field(min_length=3, max_length=7)
    checked_at: date
    source_url: HttpUrl


class BrandInfo(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,31}$")
    name: str = Field(min_length=1)
    domain: str = Field(min_length=3)
    manager_contact: str = Field(min_length=1)
    facts: list[str] = Field(default_factory=list)


class BrandCatalog(_Strict):
    brand: BrandInfo
    programs: list[Program] = Field(min_length=1)
