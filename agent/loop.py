"""The Responses loop: model -> function calls (run in parallel) -> model, for a bounded number of rounds.

With ``store=false`` nothing lives on the provider's side, so every round re-sends the growing input:
the transcript, then each ``function_call`` the model made followed by our ``function_call_output``
with the same ``call_id``. When the rounds run out, one last call forbids tools so the model must answer.
The final answer is a strict json_schema (``FinalAnswer``); anything else is a failed turn.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from agent.errors import ModelUnavailable
from agent.llm_types import FunctionCall, json_schema_format
from agent.streaming import AnswerPreview
from agent.toolkit import Tool, ToolContext, ToolFailure
from agent.types import Usage

if TYPE_CHECKING:
    from agent.llm import LLM

log = logging.getLogger(__name__)

MAX_TOOL_OUTPUT_CHARS = 6000


class AnswerChoice(BaseModel):
    label: str = Field(description="Текст кнопки, до 40 символов")
    payload: str = Field(description="Зарезервированный payload (см. инструкции) или say:<короткий текст>")


class FinalAnswer(BaseModel):
    """The model's structured reply to the user."""

    text: str = Field(description="Ответ пользователю по-русски, на «вы»")
    quick_replies: list[AnswerChoice] = Field(description="До 4 кнопок; пустой список, если не нужны")
    program_ids: list[str] = Field(description="id программ из catalog_search, которые показать карточками")
    ask_contact: bool = Field(description="true, если пора попросить телефон для заявки")


@functools.cache
def answer_format() -> dict[str, Any]:
    """The strict schema of ``FinalAnswer``, built at the first model turn (it needs the openai SDK)."""
    return json_schema_format("assistant_reply", FinalAnswer)


class LoopOutcome(BaseModel):
    answer: FinalAnswer
    usage: Usage
    rounds: int
    tool_calls: list[str]


UsageSink = Callable[[Usage], Awaitable[None]]


async def _run_call(call: FunctionCall, tools: dict[str, Tool], ctx: ToolContext) -> str:
    tool = tools.get(call.name)
    if tool is None:
        return f"error: unknown tool {call.name}"
    try:
        args = tool.args_model.model_validate_json(call.arguments or "{}")
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
        return f"error: invalid arguments ({problems})"
    try:
        result = await tool.run(args, ctx)
    except ToolFailure as failure:
        return f"error: {failure}"
    return result.model_dump_json()[:MAX_TOOL_OUTPUT_CHARS]


def _parse_answer(text: str) -> FinalAnswer:
    try:
        return FinalAnswer.model_validate_json(text)
    except ValidationError as error:
        raise ModelUnavailable("the model's answer does not match the reply schema") from error


async def run_loop(
    llm: LLM,
    *,
    instructions: str,
    input_items: list[dict[str, Any]],
    tools: list[Tool],
    tool_schemas: list[dict[str, Any]],
    ctx: ToolContext,
    max_rounds: int,
    on_usage: UsageSink,
    preview: AnswerPreview | None = None,
) -> LoopOutcome:
    """``preview``, when given, gets every round's streamed text and the names of the tools run."""
    by_name = {tool.name: tool for tool in tools}
    items = list(input_items)
    usage = Usage()
    called: list[str] = []
    for round_number in range(1, max_rounds + 2):
        allow_tools = round_number <= max_rounds
        if preview is not None:
            preview.new_round()
        turn = await llm.respond(
            instructions=instructions,
            input_items=items,
            tools=tool_schemas,
            answer_format=answer_format(),
            allow_tools=allow_tools,
            on_text=preview.feed if preview is not None else None,
        )
        usage = usage.add(turn.usage)
        await on_usage(turn.usage)
        if not turn.calls:
            if not turn.text.strip():
                raise ModelUnavailable(f"empty answer (status {turn.status})")
            return LoopOutcome(
                answer=_parse_answer(turn.text), usage=usage, rounds=round_number, tool_calls=called
            )
        if not allow_tools:
            raise ModelUnavailable("the model kept calling tools after they were disabled")
        if preview is not None:
            preview.tools([call.name for call in turn.calls])
        outputs = await asyncio.gather(*(_run_call(call, by_name, ctx) for call in turn.calls))
        for call, output in zip(turn.calls, outputs, strict=True):
            called.append(call.name)
            log.info("tool %s -> %s", call.name, "error" if output.startswith("error:") else "ok")
            items.append(
                {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments}
            )
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": output})
    raise ModelUnavailable("no answer within the round limit")  # pragma: no cover - the last round forbids tools
