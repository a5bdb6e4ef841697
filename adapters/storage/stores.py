"""The core's storage ports (agent/state.py) over the SQL repositories."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.storage.models import ConsentRecord, Conversation, Lead, ModelUsage, User
from adapters.storage.repositories import (
    ConsentRepository,
    ConversationRepository,
    LeadRepository,
    MessageRepository,
    UsageRepository,
    UserRepository,
)
from agent.state import ConversationState, LeadRequest, Profile, StoredMessage
from agent.types import Usage

REPLY_KEY_SUFFIX = ":reply"


def _state(user: User, conversation: Conversation) -> ConversationState:
    assert user.id is not None and conversation.id is not None
    return ConversationState(
        conversation_id=conversation.id,
        user_id=user.id,
        brand=conversation.brand,
        identity=user.identity,
        external_id=user.external_id,
        first_name=user.first_name,
        username=user.username,
        source=user.source,
        profile=Profile.model_validate(conversation.profile or {}),
        flow=dict(conversation.state or {}),
        human_mode_until=conversation.human_mode_until,
        handoff_reason=conversation.handoff_reason,
        handoff_notice_sent=conversation.handoff_notice_sent,
    )


class SqlStore:
    def __init__(
        self,
        users: UserRepository,
        conversations: ConversationRepository,
        messages: MessageRepository,
        leads: LeadRepository,
        consents: ConsentRepository,
        usage: UsageRepository,
    ) -> None:
        self.users = users
        self.conversations = conversations
        self.messages = messages
        self.leads = leads
        self.consents = consents
        self.usage = usage

    async def load(
        self,
        identity: str,
        external_id: str,
        brand: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
        source: str | None = None,
    ) -> ConversationState:
        user = await self.users.get_or_create(
            identity, external_id, first_name=first_name, username=username, source=source
        )
        assert user.id is not None
        conversation = await self.conversations.get_or_create(user.id, brand)
        return _state(user, conversation)

    async def load_by_id(self, conversation_id: int) -> ConversationState | None:
        conversation = await self.conversations.get(conversation_id)
        if conversation is None:
            return None
        user = await self.users.get(conversation.user_id)
        return _state(user, conversation) if user is not None else None

    async def save(self, state: ConversationState) -> None:
        conversation = await self.conversations.get(state.conversation_id)
        if conversation is None:
            return
        conversation.profile = state.profile.model_dump(exclude_none=True)
        conversation.state = state.flow
        conversation.human_mode_until = state.human_mode_until
        conversation.handoff_reason = state.handoff_reason
        conversation.handoff_notice_sent = state.handoff_notice_sent
        await self.conversations.save(conversation)

    async def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        channel: str,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> bool:
        key = idempotency_key + REPLY_KEY_SUFFIX if idempotency_key and role == "assistant" else idempotency_key
        stored = await self.messages.add(
            conversation_id, role, content, channel=channel, meta=meta, idempotency_key=key
        )
        return stored is not None

    async def stored_reply(self, idempotency_key: str) -> dict[str, Any] | None:
        message = await self.messages.by_idempotency_key(idempotency_key + REPLY_KEY_SUFFIX)
        if message is None:
            return None
        return dict(message.meta.get("reply") or {"text": message.content})

    async def recent_messages(self, conversation_id: int, *, limit: int) -> list[StoredMessage]:
        rows = await self.messages.recent(conversation_id, limit=limit)
        return [StoredMessage(role=m.role, content=m.content, meta=m.meta or {}) for m in rows]

    async def record_usage(
        self, *, conversation_id: int | None, user_id: int | None, model: str, purpose: str, usage: Usage
    ) -> None:
        await self.usage.add(
            ModelUsage(
                conversation_id=conversation_id,
                user_id=user_id,
                model=model,
                purpose=purpose,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
            )
        )

    async def tokens_since(self, since: datetime, *, user_id: int | None = None) -> int:
        return await self.usage.tokens_since(since, user_id=user_id)

    # LeadStore

    async def consent_granted(self, user_id: int, kind: str) -> bool:
        latest = await self.consents.latest(user_id, kind)
        return bool(latest and latest.granted)

    async def record_consent(
        self, *, user_id: int, kind: str, granted: bool, channel: str, text_version: str, telegram_id: int | None
    ) -> None:
        await self.consents.record(
            ConsentRecord(
                user_id=user_id,
                kind=kind,
                granted=granted,
                channel=channel,
                text_version=text_version,
                telegram_id=telegram_id,
            )
        )

    async def recent_lead(self, user_id: int, phone: str, since: datetime) -> int | None:
        lead = await self.leads.recent_for(user_id, phone, since)
        return lead.id if lead is not None else None

    async def create_lead(self, lead: LeadRequest, *, outbox_provider: str | None) -> int:
        row = await self.leads.create(Lead(**lead.model_dump()), outbox_provider=outbox_provider)
        assert row.id is not None
        return row.id
