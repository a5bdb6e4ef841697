"""A user's recent messages for the Mini App chat, read without creating a user or a conversation."""

from __future__ import annotations

from sqlmodel import col, select

from adapters.storage.database import Database
from adapters.storage.models import Conversation, Message, User


async def recent_history(db: Database, identity: str, external_id: str, brand: str, *, limit: int) -> list[Message]:
    """The conversation's last ``limit`` messages, oldest first; empty when the user never wrote."""
    async with db.session() as session:
        query = (
            select(Message)
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .join(User, col(User.id) == col(Conversation.user_id))
            .where(User.identity == identity, User.external_id == external_id, Conversation.brand == brand)
            .order_by(col(Message.id).desc())
            .limit(limit)
        )
        rows = list((await session.exec(query)).all())
    return rows[::-1]
