"""Values that cross the core's boundary: what adapters hand in and what they get back."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.text_safety import plain_name, strip_control


class Channel(StrEnum):
    telegram = "telegram"
    api = "api"
    miniapp = "miniapp"


class Identity(StrEnum):
    """Whose id ``Inbound.user_id`` is. The bot chat and the Mini App share Telegram ids."""

    telegram = "telegram"
    api = "api"


def identity_of(channel: Channel) -> Identity:
    return Identity.api if channel is Channel.api else Identity.telegram


class SharedContact(BaseModel):
    phone: str
    first_name: str | None = None
    # True only when the channel proved the phone is the sender's own (Telegram contact.user_id == from.id).
    verified: bool = False


class Inbound(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: Channel
    user_id: str = Field(min_length=1, max_length=128)
    brand: str | None = None
    text: str | None = None
    choice: str | None = None  # a quick-reply payload
    contact: SharedContact | None = None
    start: bool = False  # /start or the first open: greet
    source: str | None = None  # first-touch deep-link payload, stored once
    first_name: str | None = None
    username: str | None = None
    # The channel's own id for this message (e.g. "tg:<update_id>") so a retry is not stored twice.
    idempotency_key: str | None = None

    # A bot message can't be refused with a 422: noise characters are dropped (agent/text_safety.py).
    @field_validator("text", "choice", "source")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        return strip_control(value) if value else value

    @field_validator("first_name", "username")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        return plain_name(value)


class QuickReply(BaseModel):
    label: str
    payload: str


class ProgramCard(BaseModel):
    id: str
    title: str
    url: str
    price_text: str
    next_start_text: str
    why_match: str
    usp: list[str] = Field(default_factory=list)


class Action(StrEnum):
    ask_contact = "ask_contact"
    open_miniapp = "open_miniapp"
    handoff = "handoff"


class Usage(BaseModel):
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def add(self, other: Usage) -> Usage:
        return Usage(
            model_calls=self.model_calls + other.model_calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class Reply(BaseModel):
    text: str
    quick_replies: list[QuickReply] = Field(default_factory=list)
    cards: list[ProgramCard] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    conversation_id: int | None = None
    lead_id: int | None = None
    # True while a manager owns the conversation and the bot must stay quiet.
    silent: bool = False
    # True while a manager owns the conversation: the adapter passes the user's message on to them.
    human_mode: bool = False
    # Which engine answered: "model" or "offline" (for diagnostics and evals).
    engine: str = "offline"
    # Tools the model called this turn: stored in the turn's meta (agent/turn_meta.py), never sent out.
    tool_calls: list[str] = Field(default_factory=list, exclude=True)
