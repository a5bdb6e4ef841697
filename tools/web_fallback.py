"""web_fallback: a web search limited to the brand's site, for what the knowledge base does not cover."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.errors import ModelUnavailable
from agent.personal_data import mask_personal_data
from agent.toolkit import Tool, ToolContext, ToolFailure

DESCRIPTION = (
    "Поиск на официальном сайте школы, только если kb_file_search не нашёл ответа. Возвращает краткий "
    "ответ и ссылки на страницы сайта; без ссылок (found=false) ответу не доверяйте."
)
INSTRUCTIONS = (
    "Найди ответ на вопрос только на страницах сайта {domain}. Ответь кратко по-русски и опирайся только "
    "на найденные страницы. Если ответа на сайте нет, так и скажи."
)
MAX_ANSWER_CHARS = 1500


class Args(BaseModel):
    query: str = Field(description="Что найти на сайте школы, по-русски", max_length=300)


class Result(BaseModel):
    found: bool
    answer: str
    sources: list[str]


async def run(args: Args, ctx: ToolContext) -> Result:
    settings = ctx.settings
    if not settings.openai_web_fallback_enabled or ctx.llm is None:
        raise ToolFailure("web search is disabled")
    domain = settings.openai_web_fallback_domain
    try:
        answer = await ctx.llm.web_search(
            query=mask_personal_data(args.query), domain=domain, instructions=INSTRUCTIONS.format(domain=domain)
        )
    except ModelUnavailable as error:
        raise ToolFailure("web search is unavailable right now") from error
    if ctx.record_usage is not None:
        await ctx.record_usage("web_fallback", answer.usage)
    if not answer.citations:
        return Result(found=False, answer="", sources=[])
    return Result(found=True, answer=answer.text[:MAX_ANSWER_CHARS], sources=[c.url for c in answer.citations])


TOOL = Tool(name="web_fallback", description=DESCRIPTION, args_model=Args, run=run)
