"""crm_lookup: anonymised CRM context for the user's own, verified phone in this conversation, and no other
(a number typed in a message may be a third party's: issue 20, finding 13)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agent.errors import CrmError
from agent.toolkit import Tool, ToolContext, ToolFailure

DESCRIPTION = (
    "Проверить, знаком ли уже школе собственный телефон пользователя, подтверждённый в этом разговоре "
    "(кнопка «поделиться контактом» или заявка на звонок). Возвращает "
    "только обезличенный контекст: найден ли, теги, интересы, дней с последнего контакта. "
    "Аргументов нет: используется сохранённый номер."
)


REFUSED = (
    "not checked: only the user's own phone is looked up, one shared with Telegram's contact button or "
    "left for a callback in this conversation; politely say you can't check other numbers and offer a manager"
)


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Result(BaseModel):
    found: bool
    tags: list[str]
    interests: list[str]
    last_touch_days: int | None


async def run(args: Args, ctx: ToolContext) -> Result:
    phone = ctx.conversation.profile.phone
    if phone is None:
        raise ToolFailure("the user has not given a phone number in this conversation")
    if not ctx.conversation.profile.phone_verified:
        # A typed number may be someone else's: the CRM is never asked about it.
        raise ToolFailure(REFUSED)
    if ctx.crm is None:
        raise ToolFailure("no CRM is connected")
    try:
        found = await ctx.crm.lookup(phone)
    except CrmError as error:
        raise ToolFailure("the CRM is not answering right now") from error
    return Result(found=found.found, tags=found.tags, interests=found.interests, last_touch_days=found.last_touch_days)


TOOL = Tool(name="crm_lookup", description=DESCRIPTION, args_model=Args, run=run)
