"""The manager relay's rules, shared by every channel (README "For the sales team").

While a conversation is in human mode a manager talks to the client through the bot: what the client
sends is shown to the managers, what a manager writes reaches the client and is kept in the transcript
as a ``manager`` message. The adapters move the messages (Telegram topics, the HTTP reply); the rules
of who may write, how a topic is named and what the client is told live here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from agent.funnel import GOAL_LABELS
from agent.state import ConversationState

MANAGER_ROLE = "manager"
TOPIC_NAME_LIMIT = 128  # Telegram's limit for a forum topic's name

# What the client reads when the conversation goes back to the bot (a manager's /release or button).
RELEASED_TEXT = (
    "Менеджер завершил разговор. Если появятся вопросы — пишите, я на связи и помогу подобрать курс."
)

# How a manager's message reached (or did not reach) the client; stored in the message's meta.
Delivery = Literal["pending", "delivered", "waiting", "taken", "blocked"]
# pending: stored, not yet sent (a crash here resends it once after restart); delivered: copied to the
# client's Telegram chat; waiting: the client is not in Telegram, the next reply carries it; taken: that
# reply carried it; blocked: the client blocked the bot.


class ManagerMessage(BaseModel):
    """A manager's message as a non-Telegram client receives it (``role`` is always ``manager``)."""

    role: Literal["manager"] = "manager"
    text: str
    manager_name: str | None = None
    created_at: datetime


class Author(BaseModel):
    """Who wrote a manager message: a staff-group member (Telegram id) or an admin of the admin API."""

    name: str = Field(max_length=128)
    telegram_id: int | None = None
    via: Literal["telegram", "admin"] = "telegram"
    # What a client outside Telegram reads as the sender («Менеджер Ирина»); None: ``name``. An admin's
    # login account is an internal name and never reaches a client.
    public_name: str | None = Field(default=None, max_length=128)


def client_facing_name(meta: dict[str, object]) -> str | None:
    """The manager's name as a client may read it (stored messages carry both names)."""
    public = meta.get("public_name", meta.get("manager_name"))
    return public if isinstance(public, str) else None


def topic_title(state: ConversationState) -> str:
    """«Ольга · 9 кл · ОГЭ · #42»: the name, grade and goal the client gave, never a phone."""
    name = state.profile.name or state.first_name or (f"@{state.username}" if state.username else "Клиент")
    parts = [name.strip()[:48] or "Клиент"]
    if state.profile.grade:
        parts.append(f"{state.profile.grade} кл")
    if state.profile.goal and state.profile.goal in GOAL_LABELS:
        parts.append(GOAL_LABELS[state.profile.goal])
    parts.append(f"#{state.conversation_id}")
    return " · ".join(parts)[:TOPIC_NAME_LIMIT]


def human_mode_deadline(now: datetime, idle_hours: float) -> datetime:
    """Human mode lasts until no manager has written for HANDOFF_IDLE_HOURS."""
    return now + timedelta(hours=idle_hours)


def is_command(text: str | None) -> bool:
    """Commands in the staff chat steer the relay (/release, /close) and are never relayed."""
    return bool(text) and text.lstrip().startswith("/")  # type: ignore[union-attr]
