"""create_lead: a lead for managers, from the stored phone, only with recorded personal-data consent."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.errors import ConsentRequired, InvalidInput
from agent.contact import lead_request
from agent.toolkit import Tool, ToolContext, ToolFailure

DESCRIPTION = (
    "Создать заявку для менеджера. Телефон берётся из сохранённого контакта пользователя (сам номер вы "
    "не видите). Нужны телефон и записанное согласие на обработку персональных данных; если их нет, "
    "инструмент вернёт ошибку — тогда ответьте с ask_contact=true, и пользователь увидит кнопки."
)


class Args(BaseModel):
    name: str | None = Field(description="Имя родителя или ученика, если его назвали", max_length=100)
    program_ids: list[str] = Field(description="id выбранных программ из catalog_search", max_length=5)


class Result(BaseModel):
    lead_id: int
    already_existed: bool


async def run(args: Args, ctx: ToolContext) -> Result:
    state = ctx.conversation
    if state.profile.phone is None:
        ctx.consent_needed = True
        raise ToolFailure("no phone yet: answer with ask_contact=true")
    known = [pid for pid in args.program_ids if ctx.catalog.program(ctx.brand, pid) is not None]
    request = lead_request(
        state, channel=ctx.channel, key=ctx.idempotency_key, name=args.name, program_ids=known or None
    )
    try:
        outcome = await ctx.leads.create(request, now=ctx.now)
    except ConsentRequired as error:
        ctx.consent_needed = True
        raise ToolFailure("no personal-data consent recorded: answer with ask_contact=true") from error
    except InvalidInput as error:
        raise ToolFailure(f"invalid {error.field}") from error
    ctx.lead_id = outcome.lead_id
    return Result(lead_id=outcome.lead_id, already_existed=not outcome.created)


TOOL = Tool(name="create_lead", description=DESCRIPTION, args_model=Args, run=run)
