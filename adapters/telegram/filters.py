"""Async filters for the routers.

aiogram runs every synchronous filter, magic ``F`` filters included, through asyncio.to_thread:
a thread-pool round trip per check, several per update. Coroutine filters run inline.
"""

from __future__ import annotations

from aiogram.types import CallbackQuery, ChatMemberUpdated, Message


async def private_chat(event: Message | ChatMemberUpdated) -> bool:
    return event.chat.type == "private"


async def has_contact(message: Message) -> bool:
    return message.contact is not None


async def has_text(message: Message) -> bool:
    return message.text is not None


async def looks_like_command(message: Message) -> bool:
    return message.text is not None and message.text.startswith("/")


async def has_data(query: CallbackQuery) -> bool:
    return query.data is not None
