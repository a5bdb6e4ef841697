"""The Responses API's streamed shape (``stream: true``): the server-sent events a finished Response
arrives as, and the way back from events to the Response.

The eval replay answers a streamed request with these events (the recorded deltas when the cassette
has them, else the recorded text cut into token-sized pieces), and the tests' fake servers speak the
same stream. The event order and fields follow the API reference: ``response.created``, per output
item ``response.output_item.added`` … ``response.output_item.done`` (messages with
``response.content_part.added``, ``response.output_text.delta`` …, ``response.output_text.done``,
``response.content_part.done``; function calls with ``response.function_call_arguments.delta`` /
``.done``), then ``response.completed`` (or ``.incomplete`` / ``.failed``) with the whole Response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

# Roughly what one token of Russian or JSON text is.
_PIECE = re.compile(r"\s*[^\s]{1,5}|\s+")
FINAL_EVENT_BY_STATUS = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}


def token_pieces(text: str) -> list[str]:
    return _PIECE.findall(text)


def _message_events(index: int, item: dict[str, Any], deltas: list[str] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    item_id = item.get("id", f"msg_{index}")
    for part_index, part in enumerate(item.get("content") or []):
        if part.get("type") != "output_text":
            continue
        where = {"item_id": item_id, "output_index": index, "content_index": part_index}
        yield "response.content_part.added", {**where, "part": {"type": "output_text", "text": "", "annotations": []}}
        for piece in deltas if deltas is not None else token_pieces(part.get("text", "")):
            yield "response.output_text.delta", {**where, "delta": piece, "logprobs": []}
        yield "response.output_text.done", {**where, "text": part.get("text", ""), "logprobs": []}
        yield "response.content_part.done", {**where, "part": part}


def response_events(response: dict[str, Any], deltas: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The events a streamed call delivers for ``response`` (a Responses API JSON body).

    ``deltas`` are the recorded text deltas of the (single) message, when a cassette has them."""
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": started}),
                                                ("response.in_progress", {"response": started})]
    for index, item in enumerate(response.get("output") or []):
        opened = {**item, "status": "in_progress"}
        if item.get("type") == "message":
            opened["content"] = []
        elif item.get("type") == "function_call":
            opened["arguments"] = ""
        events.append(("response.output_item.added", {"output_index": index, "item": opened}))
        if item.get("type") == "message":
            events.extend(_message_events(index, item, deltas))
        elif item.get("type") == "function_call":
            where = {"item_id": item.get("id"), "output_index": index}
            for piece in token_pieces(item.get("arguments", "")):
                events.append(("response.function_call_arguments.delta", {**where, "delta": piece}))
            events.append(("response.function_call_arguments.done", {**where, "arguments": item.get("arguments", "")}))
        events.append(("response.output_item.done", {"output_index": index, "item": item}))
    final = FINAL_EVENT_BY_STATUS.get(response.get("status") or "completed", "response.completed")
    events.append((final, {"response": response}))
    return [(kind, {"type": kind, "sequence_number": number, **data}) for number, (kind, data) in enumerate(events)]


def encode(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    """The events on the wire (``text/event-stream``)."""
    return "".join(
        f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n" for kind, data in events
    ).encode("utf-8")


def decode(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Events read back from the wire (a recording of a live stream)."""
    events: list[tuple[str, dict[str, Any]]] = []
    for block in body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        kind, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data and data != ["[DONE]"]:
            try:
                events.append((kind, json.loads("\n".join(data))))
            except ValueError:
                continue
    return events


def recorded(events: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any] | None, list[str]]:
    """The final Response of a stream and its text deltas, as a cassette keeps them."""
    final = next((data.get("response") for kind, data in events if kind in FINAL_EVENT_BY_STATUS.values()), None)
    deltas = [data.get("delta", "") for kind, data in events if kind == "response.output_text.delta"]
    return final, deltas
