"""Interfaces the core needs from the outside world; adapters implement them.

The storage ports (Store, LeadStore) live with the conversation state (agent/state.py); the ones here are
shared by several adapters: the CRM (create_lead, crm_lookup, the outbox, /leadtest) and the
knowledge base (kb_file_search, /api/kb/search, /kbtest).
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from agent.types import Channel, Inbound, Reply
from agent.withdrawal import UserRef, Withdrawn


class LeadPayload(BaseModel):
    """What a CRM receives for one lead. The phone is normalised (+7XXXXXXXXXX)."""

    lead_id: int
    brand: str
    phone: str
    name: str | None = None
    source: str | None = None
    channel: str = "telegram"
    grade: int | None = None
    goal: str | None = None
    subject: str | None = None
    format: str | None = None
    program_ids: list[str] = Field(default_factory=list)
    summary: str = ""
    is_test: bool = False
    # Ids an earlier, partly finished push recorded (e.g. the amo lead whose note failed): reuse them.
    known_ids: dict[str, str] = Field(default_factory=dict)


class CrmPushResult(BaseModel):
    crm_ids: dict[str, str] = Field(default_factory=dict)  # e.g. {"contact_id": "…", "lead_id": "…"}
    created: bool = True  # False when an existing record was found and updated


class CrmLookupResult(BaseModel):
    """Anonymised context only: never names, phones, addresses or notes."""

    found: bool
    tags: list[str] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    last_touch_days: int | None = None


class CRM(Protocol):
    name: str

    async def push_lead(self, lead: LeadPayload) -> CrmPushResult: ...

    async def lookup(self, phone: str) -> CrmLookupResult: ...

    async def check(self) -> None:
        """A cheap authenticated read; raises CrmError when the CRM can't be used."""
        ...


class Passage(BaseModel):
    doc_id: str
    title: str
    text: str
    source_url: str | None = None
    score: float = 0.0


class KnowledgeResult(BaseModel):
    passages: list[Passage] = Field(default_factory=list)
    # False when nothing scored above the relevance threshold: say «уточню у менеджера».
    relevant: bool = False


class Knowledge(Protocol):
    async def search(self, brand: str, query: str, *, limit: int = 3) -> KnowledgeResult: ...


class HandoffNotice(BaseModel):
    """What managers see when a conversation is handed to a human (posted to MANAGER_CHAT_ID)."""

    conversation_id: int
    brand: str
    channel: str
    user_display: str  # first name / @username / "API user 42": never the phone unless consented
    reason: str
    profile: dict[str, object] = Field(default_factory=dict)
    contact: str | None = None  # only when the user consented to personal-data processing
    transcript_url: str | None = None


class Notifier(Protocol):
    """Outbound messages the core asks for outside a reply: staff cards and user confirmations.

    The Telegram adapter implements it; without a bot a null notifier only logs.
    """

    async def notify_handoff(self, notice: HandoffNotice) -> None: ...

    async def notify_user(self, telegram_user_id: int, text: str) -> None: ...


class Assistant(Protocol):
    """What every adapter calls. Reserved quick-reply payloads are documented in agent/service.py."""

    async def handle(self, inbound: Inbound) -> Reply: ...

    async def handoff(self, inbound: Inbound, reason: str) -> Reply:
        """Put the conversation in human mode and notify managers (/manager, a button, the model's tool)."""
        ...

    async def release(self, conversation_id: int) -> None:
        """End human mode (admin action)."""
        ...

    async def remember_lead(
        self, *, identity: str, external_id: str, brand: str, lead_id: int, phone: str, name: str | None,
        profile: dict[str, Any], program_ids: list[str],
    ) -> None:
        """A lead made outside the chat (the Mini App form): the chat then knows it."""
        ...

    async def withdraw_consent(self, user: UserRef, channel: Channel | str, *, brand: str | None = None) -> Withdrawn:
        """Withdraw the user's consent and delete their personal data (agent/withdrawal.py); every channel."""
        ...
