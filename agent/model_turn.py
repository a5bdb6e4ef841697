"""One user turn answered by the model: build the instructions and the transcript, run the loop, and
turn the structured answer into a Reply (cards only from catalog results, payloads only reserved ones)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.catalog import BrandInfo
from agent.llm_types import function_tool
from agent.loop import FinalAnswer, run_loop
from agent.prompting import TRANSCRIPT_MAX_MESSAGES, Prompts, build_instructions, transcript_items
from agent.settings import Settings
from agent.state import Store
from agent.streaming import AnswerPreview, current_live_reply
from agent.toolkit import Tool, ToolContext
from agent.types import QuickReply, Reply, Usage

if TYPE_CHECKING:
    from agent.llm import LLM  # the SDK is imported only where a model is configured

CALLBACK_DATA_MAX_BYTES = 64  # Telegram's callback_data limit; the API channel keeps the same rule
RESERVED_PREFIXES = ("grade:", "goal:", "subject:", "format:", "program:", "say:")
RESERVED_PAYLOADS = {"contact:start", "handoff", "restart", "programs", "consent:yes", "consent:no", "forget:yes", "forget:no"}
MAX_QUICK_REPLIES = 4


def valid_payload(payload: str, *, from_model: bool = False) -> bool:
    if len(payload.encode("utf-8")) > CALLBACK_DATA_MAX_BYTES:
        return False
    # Consent is the user's own act on the consent text the bot shows: the model may not offer a "yes".
    if from_model and payload.startswith(("consent:", "forget:")):
        return False
    return payload in RESERVED_PAYLOADS or (payload.startswith(RESERVED_PREFIXES) and len(payload.split(":", 1)[1]) > 0)


def model_quick_replies(answer: FinalAnswer) -> list[QuickReply]:
    replies = [
        QuickReply(label=choice.label.strip()[:40], payload=choice.payload.strip())
        for choice in answer.quick_replies
        if choice.label.strip() and valid_payload(choice.payload.strip(), from_model=True)
    ]
    return replies[:MAX_QUICK_REPLIES]


@dataclass
class ModelTurn:
    settings: Settings
    llm: LLM
    tools: list[Tool]
    # None: built from ``tools`` at the first turn (they need the openai SDK, which `serve` loads after
    # start-up: adapters/deferred_sdks.py)
    tool_schemas: list[dict[str, Any]] | None
    prompts: Prompts
    store: Store

    def schemas(self) -> list[dict[str, Any]]:
        if self.tool_schemas is None:
            self.tool_schemas = [function_tool(t.name, t.description, t.args_model) for t in self.tools]
        return self.tool_schemas

    async def run(
        self,
        ctx: ToolContext,
        *,
        brand: BrandInfo,
        consent_given: bool,
        given: dict[str, Any] | None = None,
        check: Callable[[str], str] | None = None,
        rules_prompt: str = "",
    ) -> tuple[Reply, FinalAnswer]:
        """``check`` is the reply guardrails; with it, a live reply in the turn's context (Telegram
        drafts, SSE) is shown the answer's checked sentences as the model writes them."""
        state = ctx.conversation
        live = current_live_reply()
        preview = AnswerPreview(live, check) if live is not None and check is not None else None
        instructions = build_instructions(
            self.prompts,
            brand_name=brand.name,
            brand_domain=brand.domain,
            facts=brand.facts,
            manager_contact=brand.manager_contact,
            rules=rules_prompt,
            today=ctx.today,
            profile=state.profile,
            consent_given=consent_given,
            lead_id=state.flow.get("lead_id"),
            given=given or {},
        )
        messages = state.preloaded_transcript
        if messages is None:
            messages = await self.store.recent_messages(state.conversation_id, limit=TRANSCRIPT_MAX_MESSAGES)

        async def on_usage(usage: Usage) -> None:
            if ctx.record_usage is not None:
                await ctx.record_usage("turn", usage)

        outcome = await run_loop(
            self.llm,
            instructions=instructions,
            input_items=transcript_items(messages),
            tools=self.tools,
            tool_schemas=self.schemas(),
            ctx=ctx,
            max_rounds=self.settings.openai_max_tool_rounds,
            on_usage=on_usage,
            preview=preview,
        )
        answer = outcome.answer
        cards = [ctx.cards[pid] for pid in dict.fromkeys(answer.program_ids) if pid in ctx.cards]
        if cards:
            state.flow["shown"] = [card.id for card in cards]
        reply = Reply(
            text=answer.text.strip(),
            quick_replies=model_quick_replies(answer),
            cards=cards,
            usage=outcome.usage,
            engine="model",
            lead_id=ctx.lead_id,
            tool_calls=outcome.tool_calls,
        )
        return reply, answer
