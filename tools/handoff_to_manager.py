"""handoff_to_manager: hand the conversation to a human; the bot goes quiet until released or 24 h pass."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.toolkit import Tool, ToolContext

DESCRIPTION = (
    "Передать разговор живому менеджеру: когда пользователь просит человека, жалуется, или вопрос "
    "нельзя решить по каталогу и базе знаний. После этого бот замолкает, пока менеджер не ответит."
)


class Args(BaseModel):
    reason: str = Field(description="Коротко, зачем нужен менеджер", max_length=300)


class Result(BaseModel):
    handed_off: bool


async def run(args: Args, ctx: ToolContext) -> Result:
    # The service switches human mode on and notifies managers after the turn, once.
    ctx.handoff_reason = args.reason.strip() or "запрос пользователя"
    return Result(handed_off=True)


TOOL = Tool(name="handoff_to_manager", description=DESCRIPTION, args_model=Args, run=run)
