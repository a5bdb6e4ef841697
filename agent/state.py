"""The conversation as the core sees it, and the storage port the service loads and saves it through.

adapters/storage/stores.py implements ``Store`` and ``LeadStore``: a turn's reads and writes in
SQLAlchemy Core (adapters/storage/turn_sql.py), the rest over the ORM repositories; the core never sees SQL.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field, PrivateAttr, field_validator

from agent.text_safety import plain_name, strip_control
from agent.types import Usage


class Profile(BaseModel):
    """What the conversation has learnt; shared by the bot chat and the Mini App (same Telegram id)."""

    grade: int | None = None
    goal: str | None = None
    subject: str | None = None
    format: str | None = None
    name: str | None = None
    # The phone the user gave in this conversation, normalised (+7XXXXXXXXXX). Never sent to the model.
    phone: str | None = None
    # True when that phone is the user's own: shared with Telegram's contact button (contact.user_id ==
    # from.id) or confirmed by the contact flow (a lead left for it with consent). crm_lookup needs it.
    phone_verified: bool = False
    program_ids: list[str] = Field(default_factory=list)


class ConversationState(BaseModel):
    conversation_id: int
    user_id: int
    brand: str
    identity: str
    external_id: str
    first_name: str | None = None
    username: str | None = None
    source: str | None = None
    profile: Profile = Field(default_factory=Profile)
    # Policy state: the offline funnel step, whether a phone is awaited, the last shown program ids.
    flow: dict[str, Any] = Field(default_factory=dict)
    human_mode_until: datetime | None = None
    handoff_reason: str | None = None
    handoff_notice_sent: bool = False
    # The stored values this state was loaded with (set by the store): a save writes only what changed
    # since, so a turn and a release running at once (another update, another process) keep each other's
    # changes instead of writing back what they loaded.
    _as_loaded: dict[str, Any] | None = PrivateAttr(default=None)
    # What a model turn reads, read along with the turn's opening (``Store.open_turn`` with
    # ``context_messages``) so that it costs no transactions of its own: the latest messages, the user's
    # new one included, and whether personal-data consent stands. None: not read (then read when needed).
    _transcript: list[StoredMessage] | None = PrivateAttr(default=None)
    _consent: bool | None = PrivateAttr(default=None)

    def preload(self, transcript: list[StoredMessage], consent: bool) -> None:
        self._transcript, self._consent = transcript, consent

    @property
    def preloaded_transcript(self) -> list[StoredMessage] | None:
        return self._transcript

    @property
    def preloaded_consent(self) -> bool | None:
        return self._consent

    def consent_recorded(self, granted: bool) -> None:
        """The turn recorded a consent answer: it is now the latest one."""
        if self._consent is not None:
            self._consent = granted


class StoredMessage(BaseModel):
    role: str  # user | assistant
    content: str
    meta: dict[str, Any] = Field(default_factory=dict)


class LeadRequest(BaseModel):
    """A lead to store. ``LeadService.create`` normalises ``phone`` before the store sees it."""

    user_id: int
    conversation_id: int | None = None
    brand: str
    channel: str
    phone: str
    name: str | None = Field(default=None, max_length=256)
    source: str | None = None
    profile: dict[str, Any] = Field(default_factory=dict)
    program_ids: list[str] = Field(default_factory=list)
    # What the client added for the manager (a second phone, «перезвоните после 18»), prefixed «От клиента:».
    manager_note: str | None = None
    idempotency_key: str | None = None
    is_test: bool = False

    # Stored and shown to managers (card, admin, CSV): no control characters or reordering marks.
    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        return plain_name(value)

    @field_validator("manager_note")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        return strip_control(value) if value else value


class EarlierLead(BaseModel):
    """A lead the same user left with the same phone recently: what LeadService's dedupe compares."""

    lead_id: int
    profile: dict[str, Any] = Field(default_factory=dict)
    program_ids: list[str] = Field(default_factory=list)


class NewMessage(BaseModel):
    content: str
    channel: str
    meta: dict[str, Any] | None = None
    # The channel's own id of the update (e.g. "tg:<update_id>"): a reprocessed update stores nothing twice.
    idempotency_key: str | None = None


class UsageRecord(BaseModel):
    """One model call's (or one web search's) tokens, charged to a conversation and its user."""

    conversation_id: int | None
    user_id: int | None
    model: str
    purpose: str
    usage: Usage


class TurnStart(BaseModel):
    """``Store.open_turn``'s answer: the reply already given to this update, or the loaded conversation."""

    state: ConversationState | None = None
    stored_reply: dict[str, Any] | None = None


class Store(Protocol):
    def exclusive(self, identity: str, external_id: str, brand: str) -> AbstractAsyncContextManager[None]:
        """Held while one of the user's turns runs, in every process sharing this store: a retried
        message reaching another process waits for the first attempt's turn and then finds its reply."""
        ...

    async def load(
        self,
        identity: str,
        external_id: str,
        brand: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
        source: str | None = None,
    ) -> ConversationState: ...

    async def open_turn(
        self,
        identity: str,
        external_id: str,
        brand: str,
        message: NewMessage | None,
        *,
        first_name: str | None = None,
        username: str | None = None,
        source: str | None = None,
        context_messages: int = 0,
    ) -> TurnStart:
        """The reply already given to ``message.idempotency_key`` (a reprocessed update: nothing is
        stored), else the conversation (user and conversation created when new) with the user's
        message stored (``message`` None: only load the conversation). ``context_messages`` > 0: the
        conversation's latest messages (that many at most) and its consent are preloaded into the state
        in the same transaction (``ConversationState.preload``)."""
        ...

    async def finish_turn(self, state: ConversationState, reply: NewMessage, usage: list[UsageRecord]) -> None:
        """In one transaction: the assistant's message (stored once per idempotency key), the
        conversation's state and the turn's model usage."""
        ...

    async def load_by_id(self, conversation_id: int) -> ConversationState | None: ...

    async def save(self, state: ConversationState) -> None: ...

    async def recent_messages(self, conversation_id: int, *, limit: int) -> list[StoredMessage]: ...

    async def record_usage(self, usage: list[UsageRecord]) -> None:
        """Usage of a turn that failed before ``finish_turn``: the tokens were spent all the same."""
        ...

    async def tokens_today(self, day_start: datetime, *, user_id: int) -> tuple[int, int]:
        """Tokens spent since ``day_start`` by the user and by everyone, read together; without Redis
        they may lag other processes a little."""
        ...


class LeadStore(Protocol):
    async def consent_granted(self, user_id: int, kind: str) -> bool: ...

    async def record_consent(
        self, *, user_id: int, kind: str, granted: bool, channel: str, text_version: str, telegram_id: int | None
    ) -> None: ...

    async def recent_leads(self, user_id: int, phone: str, since: datetime) -> list[EarlierLead]:
        """Leads of this user with this phone created at ``since`` or later, newest first."""
        ...

    async def create_lead(self, lead: LeadRequest, *, outbox_provider: str | None) -> int: ...

    async def create_test_lead(self, *, brand: str, phone: str, name: str) -> int:
        """/leadtest's lead: marked is_test, no user, no outbox row (it is pushed directly)."""
        ...

    async def annotate_lead(self, lead_id: int, *, note: str | None, name: str | None) -> None:
        """Append ``note`` to the lead's note (a new line) and set its name when one is given."""
        ...
