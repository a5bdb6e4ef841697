"""A consent withdrawal's part in the staff chat: the copies of the client's messages the manager relay
posted there (agent/withdrawal.py's ``StaffCopies``).

A forum topic is deleted whole (deleteForumTopic: the card, every copy and the managers' answers, at
any age). In a group without topics the card and the copies are deleted one by one (deleteMessages);
Telegram refuses that for messages older than 48 hours, so older ones stay for a manager to remove.
Best effort: the withdrawal is committed before this runs, and a failure is logged, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from sqlmodel import col, select

from adapters.storage.database import Database
from adapters.storage.models import Conversation, RelayLink, RelayTopic

log = logging.getLogger(__name__)
DELETE_BATCH = 100  # deleteMessages takes at most 100 ids


@dataclass
class StaffThread:
    chat_id: int
    thread_id: int | None
    message_ids: list[int] = field(default_factory=list)


class StaffChatCopies:
    def __init__(self, bot: Bot, db: Database) -> None:
        self.bot = bot
        self.db = db

    async def collect(self, user_id: int) -> list[StaffThread]:
        conversations = select(Conversation.id).where(Conversation.user_id == user_id)
        async with self.db.session() as session:
            topics = (await session.exec(select(RelayTopic).where(col(RelayTopic.conversation_id).in_(conversations)))).all()
            links = (await session.exec(select(RelayLink).where(col(RelayLink.conversation_id).in_(conversations)))).all()
        threads = {topic.conversation_id: StaffThread(topic.chat_id, topic.thread_id) for topic in topics}
        loose: dict[int, StaffThread] = {}
        for link in links:
            thread = threads.get(link.conversation_id)
            if thread is None or thread.chat_id != link.chat_id:
                thread = loose.setdefault(link.chat_id, StaffThread(link.chat_id, None))
            thread.message_ids.append(link.message_id)
        return [*threads.values(), *loose.values()]

    async def remove(self, collected: object) -> int:
        """How many staff-chat messages were removed (a deleted topic counts its known messages)."""
        assert isinstance(collected, list)
        removed = 0
        for thread in collected:
            assert isinstance(thread, StaffThread)
            if thread.thread_id is not None:
                try:
                    await self.bot.delete_forum_topic(thread.chat_id, thread.thread_id)
                    removed += max(len(thread.message_ids), 1)
                    continue
                except TelegramAPIError as error:  # no right to delete topics: fall back to the messages
                    log.warning("staff topic %s not deleted: %s", thread.thread_id, type(error).__name__)
            ids = sorted(set(thread.message_ids))
            for start in range(0, len(ids), DELETE_BATCH):
                batch = ids[start:start + DELETE_BATCH]
                try:
                    await self.bot.delete_messages(thread.chat_id, batch)
                    removed += len(batch)
                except TelegramAPIError as error:
                    log.warning("%d staff-chat copies not deleted: %s", len(batch), type(error).__name__)
        return removed
