"""The ordering key of a Telegram update (telegram_updates.chat_id): shared by the queue, which writes
it, and the consent withdrawal, which finds a client's rows by it."""

from __future__ import annotations

import hashlib


def topic_key(chat_id: int, thread_id: int) -> int:
    """The ordering key of one forum topic: below -2**62, where no Telegram chat id lies, so each
    client's topic in the staff group is a line of its own (a collision only joins two lines)."""
    digest = hashlib.blake2b(f"{chat_id}:{thread_id}".encode(), digest_size=8).digest()
    return -(2**62) - (int.from_bytes(digest, "big") >> 3)


def relay_line(conversation_id: int) -> int:
    """The ordering key of the relay work an HTTP request queues for one conversation (an admin's
    answer, an API client's message for the topic): between -2**62 and -2**61, clear of Telegram's
    chat ids and of the topics' keys, so each conversation's jobs run one at a time, in order."""
    return -(2**61) - conversation_id
