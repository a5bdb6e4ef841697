"""What a tool is and what it sees. The tools themselves live in tools/ (one file each); the core only
knows this shape, so the loop is handed its tools and never imports them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agent.errors import AgentError
from agent.ports import CRM, Knowledge
from agent.settings import Settings
from agent.state import ConversationState
from agent.types import ProgramCard, Usage

if TYPE_CHECKING:
    from agent.catalog import Catalog
    from agent.leads import LeadService
    from agent.llm import LLM


class ToolFailure(AgentError):
    """An expected failure the model should hear about as a short text (a bug raises instead)."""


@dataclass
class ToolContext:
    settings: Settings
    brand: str
    channel: str
    today: date
    now: datetime
    conversation: ConversationState
    catalog: Catalog
    knowledge: Knowledge
    leads: LeadService
    crm: CRM | None = None
    llm: LLM | None = None
    idempotency_key: str | None = None
    record_usage: Callable[[str, Usage], Awaitable[None]] | None = None
    # What the tools produced during this turn; the service turns it into the reply.
    cards: dict[str, ProgramCard] = field(default_factory=dict)
    manager_recommended: bool = False
    lead_id: int | None = None
    consent_needed: bool = False
    handoff_reason: str | None = None


ToolRun = Callable[[Any, ToolContext], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args_model: type[BaseModel]
    run: ToolRun
