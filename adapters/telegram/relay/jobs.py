"""Relay work that starts outside a Telegram update goes through the durable update queue too.

An admin's answer (admin API, admin Mini App), a client outside Telegram writing while a manager has
the conversation, the topic's note of an admin's release and the handoff card of such a client start
in an HTTP request. The request commits a job row to ``telegram_updates`` and returns; a queue worker
(of any process) runs it through the bot's SendPolicy like any update, so a flood wait or an outage
of Telegram is retried by the queue instead of being lost with the request, and no HTTP request ever
waits on the Bot API.

A job row has a negative update_id (Telegram's are never negative, and the webhook refuses them, so
no one outside can post a job), increasing with time, and the conversation's own line
(``relay_line``): one conversation's jobs run one at a time, in the order they were queued.
"""

from __future__ import annotations

import contextvars
import json
import secrets
import time
from typing import Any

from adapters.storage.chat_keys import relay_line
from adapters.telegram.queue import ClaimedUpdate, UpdateQueue

JOB_FIELD = "relay_job"
_TIE_BREAK = 1024  # ids of one microsecond: two processes queueing at once still get different ids

# Set while a queue worker runs an update or a job: relay work found there runs in place.
in_queue: contextvars.ContextVar[bool] = contextvars.ContextVar("relay_in_queue", default=False)


def job_id() -> int:
    return -(2**62) + (time.time_ns() // 1000) * _TIE_BREAK + secrets.randbelow(_TIE_BREAK)


class RelayJobs:
    def __init__(self, queue: UpdateQueue) -> None:
        self.queue = queue

    async def submit(self, conversation_id: int, kind: str, **fields: Any) -> None:
        """Commit the job; a worker runs it (StaffRelay.run_job)."""
        while True:
            update_id = job_id()
            payload = {"update_id": update_id, JOB_FIELD: {"kind": kind, "conversation_id": conversation_id, **fields}}
            if await self.queue.add(update_id, relay_line(conversation_id), json.dumps(payload, ensure_ascii=False)):
                return  # else the id was taken (the same microsecond and tie-break): draw another


def job_of(item: ClaimedUpdate) -> dict[str, Any] | None:
    """The relay job a queue row carries, or None for a Telegram update (or a scrubbed job row)."""
    if item.update_id >= 0:
        return None
    try:
        job = json.loads(item.payload).get(JOB_FIELD)
    except (ValueError, AttributeError):
        return None
    return job if isinstance(job, dict) else None
