"""kb_file_search: the brand's knowledge base (FAQ documents with their sources)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.answers import find_passages, plain, shorten
from agent.personal_data import mask_personal_data
from agent.toolkit import Tool, ToolContext

MAX_PASSAGE_CHARS = 1200  # the best sections; the model answers briefly from them

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
    """The same retrieval as the offline answers (agent/answers.py): content words, season and topic
    filters, the fitting sections only."""
    relevant, passages = await find_passages(ctx.knowledge, ctx.brand, mask_personal_data(args.query), limit=3)
    return Result(
        relevant=relevant,
        passages=[
            Found(title=p.title, text=shorten(plain(p.text), MAX_PASSAGE_CHARS), source_url=p.source_url) for p in passages
        ],
    )


TOOL = Tool(name="kb_file_search", description=DESCRIPTION, args_model=Args, run=run)
