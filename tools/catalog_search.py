"""catalog_search: the ranked catalog search; its arguments also fill in the conversation profile."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agent.catalog import Format, Goal, SearchCriteria, Subject
from agent.toolkit import Tool, ToolContext

DESCRIPTION = (
    "Подбор программ из каталога школы по классу, цели, предмету и формату. Передавайте то, что уже "
    "известно (остальное null). Возвращает до трёх программ; пользователь увидит их карточками, "
    "поэтому цены и даты не пересказывайте, а ссылайтесь на карточки по id."
)


class Args(BaseModel):
    grade: int | None = Field(description="Класс ученика, 1–11", ge=1, le=11)
    goal: Goal | None = Field(description="Цель: ege, oge, olympiad, base, intensive, camp")
    subject: Subject | None = Field(description="Предмет: math, physics, informatics, russian")
    format: Format | None = Field(description="Формат: online, offline, hybrid")


class FoundProgram(BaseModel):
    id: str
    title: str
    why_match: str
    next_start_text: str


class Result(BaseModel):
    programs: list[FoundProgram]
    match_quality: Literal["strong", "limited", "none"]
    manager_recommended: bool


async def run(args: Args, ctx: ToolContext) -> Result:
    profile = ctx.conversation.profile
    for name in ("grade", "goal", "subject", "format"):
        value = getattr(args, name)
        if value is not None:
            setattr(profile, name, value)
    criteria = SearchCriteria(grade=profile.grade, goal=profile.goal, subject=profile.subject, format=profile.format)
    found = ctx.catalog.search(ctx.brand, criteria, today=ctx.today, limit=3)
    for card in found.items:
        ctx.cards[card.id] = card
    ctx.manager_recommended = ctx.manager_recommended or found.manager_recommended
    return Result(
        programs=[
            FoundProgram(id=c.id, title=c.title, why_match=c.why_match, next_start_text=c.next_start_text)
            for c in found.items
        ],
        match_quality=found.match_quality,
        manager_recommended=found.manager_recommended,
    )


TOOL = Tool(name="catalog_search", description=DESCRIPTION, args_model=Args, run=run)
