"""A turn of the assistant as Server-Sent Events (``POST /api/assistant/ask`` with
``Accept: text/event-stream`` or ``"stream": true``).

Events, each ``data`` a JSON object:
    status  {"text": "Подбираю программы…"}       what the assistant is doing (tool rounds)
    delta   {"text": "<the checked answer so far>"} the whole text so far, not an increment: each one
                                                     replaces the previous (agent/streaming.py)
    reply   today's JSON reply object               the final, checked reply; it wins over the deltas
    error   {"ok": false, "reason": ...}            the turn failed; nothing follows

The turn runs in its own task: a client that goes away mid-stream stops receiving, not the turn, which
still finishes and is stored once (like any turn, one stored reply per inbound message).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.sse import EventSourceResponse, format_sse_event
from starlette.requests import Request

from adapters.http.errors import agent_error_body
from pydantic import BaseModel

from agent.errors import AgentError
from agent.streaming import live_reply

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
# Turns whose client left: kept referenced until they finish (a bare task may be garbage-collected).
_detached: set[asyncio.Task[Any]] = set()


def wants_stream(request: Request, flag: bool) -> bool:
    return flag or EVENT_STREAM in request.headers.get("accept", "").lower()


class QueuedLiveReply:
    """The turn's live reply as events waiting for the response stream."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    def status(self, text: str) -> None:
        self.events.put_nowait(("status", {"text": text}))

    def text(self, text: str) -> None:
        self.events.put_nowait(("delta", {"text": text}))


def sse(event: str, data: dict[str, Any]) -> bytes:
    return format_sse_event(event=event, data_str=json.dumps(data, ensure_ascii=False))


async def turn_events(run: Callable[[], Awaitable[BaseModel]]) -> AsyncIterator[bytes]:
    """``run`` answers the turn with the endpoint's reply object (the last event)."""
    live = QueuedLiveReply()
    with live_reply(live):  # the task copies the context, live reply included
        turn = asyncio.create_task(run(), name="assistant-sse-turn")
    _detached.add(turn)
    turn.add_done_callback(_detached.discard)
    while not turn.done() or not live.events.empty():
        if live.events.empty():
            waiting = asyncio.ensure_future(live.events.get())
            try:
                await asyncio.wait({waiting, turn}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()  # a client gone: the turn goes on alone
            if not waiting.done() or waiting.cancelled():
                continue
            event, data = waiting.result()
        else:
            event, data = live.events.get_nowait()
        yield sse(event, data)
    try:
        reply = turn.result()
    except AgentError as error:
        yield sse("error", agent_error_body(error)[1])
    except Exception:
        log.exception("assistant turn failed mid-stream")
        yield sse("error", {"ok": False, "reason": "internal_error"})
    else:
        yield sse("reply", reply.model_dump(mode="json"))


def event_stream(run: Callable[[], Awaitable[BaseModel]]) -> EventSourceResponse:
    # no-cache and no proxy buffering: each event must reach the client when it is written.
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventSourceResponse(turn_events(run), headers=headers)
