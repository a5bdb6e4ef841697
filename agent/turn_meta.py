"""The one shape of an assistant message's ``meta``: written by the service at the end of a turn, read by
the funnel (programs shown) and the admin transcript (cards shown, tools called).

    {
      "engine": "model" | "offline",     which engine answered
      "cards": ["<program id>", ...],      program cards shown with this message (catalog ids, in order)
      "tool_calls": ["<tool name>", ...],  tools the model called in this turn, in call order
      "reply": {...}                       the whole Reply as the adapters got it (replayed for a retried update)
    }

Tool arguments are left out on purpose: create_lead and crm_lookup carry personal data the admin list
does not need. Messages stored before this shape existed read as an empty TurnMeta.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agent.types import Reply


class TurnMeta(BaseModel):
    engine: str | None = None
    cards: list[str] = Field(default_factory=list)
    tool_calls: list[str] = Field(default_factory=list)


def write_turn_meta(reply: Reply, tool_calls: list[str]) -> dict[str, Any]:
    meta = TurnMeta(engine=reply.engine, cards=[card.id for card in reply.cards], tool_calls=list(tool_calls))
    return {**meta.model_dump(), "reply": reply.model_dump(mode="json")}


def read_turn_meta(meta: object) -> TurnMeta:
    """The TurnMeta in a stored ``meta`` (extra keys such as ``reply`` or a user's ``choice`` ignored)."""
    if not isinstance(meta, dict):
        return TurnMeta()
    try:
        return TurnMeta.model_validate({k: meta[k] for k in ("engine", "cards", "tool_calls") if k in meta})
    except ValidationError:
        return TurnMeta()
