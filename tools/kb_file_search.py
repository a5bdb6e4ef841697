"""kb_file_search: the brand's knowledge base (FAQ documents with their sources)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.guardrails import mask_personal_data
from agent.toolkit import Tool, ToolContext

DESCRIPTION = (
    "Поиск ответа в базе знаний школы (оплата, скидки, вычет, расписание, адреса, лагеря, пробное занятие "
    "и т. п.). Отвечайте только по найденным фрагментам и называйте источник; если relevant=false, "
    "честно скажите, что уточните у менеджера."
)


class Args(BaseModel):
    query: str = Field(description="Вопрос пользователя своими словами, по-русски", max_length=500)


class Found(BaseModel):
    title: str
    text: str
    source_url: str | None


class Result(BaseModel):
    relevant: bool
    passages: list[Found]


async def run(args: Args, ctx: ToolContext) -> Result:
    found = await ctx.knowledge.search(ctx.brand, mask_personal_data(args.query), limit=3)
    return Result(
        relevant=found.relevant,
        passages=[Found(title=p.title, text=p.text, source_url=p.source_url) for p in found.passages],
    )


TOOL = Tool(name="kb_file_search", description=DESCRIPTION, args_model=Args, run=run)
