"""Responses API payloads shaped like the real ones, for respx routes on the real openai SDK."""

from __future__ import annotations

import json
from itertools import count
from typing import Any

import httpx

BASE_URL = "https://api.openai.com/v1"
_ids = count(1)


def usage(input_tokens: int = 100, output_tokens: int = 20) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def function_call(name: str, arguments: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    n = next(_ids)
    return {
        "type": "function_call",
        "id": f"fc_{n}",
        "call_id": call_id or f"call_{n}",
        "name": name,
        "arguments": json.dumps(arguments, ensure_ascii=False),
        "status": "completed",
    }


def message(text: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg_{next(_ids)}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": annotations or []}],
    }


def answer(text: str, *, program_ids: list[str] | None = None, quick_replies: list[dict[str, str]] | None = None,
           ask_contact: bool = False) -> dict[str, Any]:
    """The structured final answer (strict json_schema text) as the model returns it."""
    body = {"text": text, "quick_replies": quick_replies or [], "program_ids": program_ids or [], "ask_contact": ask_contact}
    return message(json.dumps(body, ensure_ascii=False))


def url_citation(url: str, title: str = "") -> dict[str, Any]:
    return {"type": "url_citation", "url": url, "title": title, "start_index": 0, "end_index": 1}


def response(*output: dict[str, Any], input_tokens: int = 100, output_tokens: int = 20, status: str = "completed") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": f"resp_{next(_ids)}",
            "object": "response",
            "created_at": 1767225600,
            "model": "gpt-4.1-2025-04-14",
            "status": status,
            "output": list(output),
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage(input_tokens, output_tokens),
        },
    )


def error(status: int, *, retry_after: str | None = None, code: str | None = None) -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return httpx.Response(
        status, headers=headers, json={"error": {"message": "fake failure", "type": "server_error", "code": code}}
    )


def sent(route: Any, index: int = -1) -> dict[str, Any]:
    """The JSON body of a request the SDK sent."""
    return json.loads(route.calls[index].request.content)


def streamed(answer: httpx.Response, deltas: list[str] | None = None, *, cut_after: int | None = None) -> httpx.Response:
    """The same answer as the server-sent events of a ``stream: true`` call (evals/streams.py).
    ``cut_after`` ends the stream after that many events, as a dropped connection does."""
    from evals import streams

    events = streams.response_events(answer.json(), deltas)
    if cut_after is not None:
        events = events[:cut_after]
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=streams.encode(events))
