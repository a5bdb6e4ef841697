"""Hand-authored cassettes: a model's turns written by hand, recorded through the real service.

No live model is reachable where the shipped cassettes are made, so a good model's answers are written
as short stubs in the dialog file and expanded here into full Responses API payloads (the same fields,
ids and usage block the API returns). ``python -m evals reseal`` then runs the case in record mode
against a scripted upstream that serves the case's bodies in order: the service builds its real
requests, and the cassette is rewritten with their fingerprints. A stub is a body with one key:

    body: {author: {text: "…", quick_replies: [], program_ids: [], ask_contact: false}}   # the answer
    body: {author_calls: [{name: kb_file_search, arguments: {query: "…"}}]}               # tool calls

Token counts are estimated from the request size (about 3 characters per token in Russian).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from evals.cases import Exchange

MODEL = "gpt-4.1-2025-04-14"
CREATED_AT = 1787254434


def _id(prefix: str, *parts: object) -> str:
    return f"{prefix}_{hashlib.sha256(repr(parts).encode()).hexdigest()[:24]}"


def expand(body: dict[str, Any], *, seed: str, request_chars: int) -> dict[str, Any]:
    """A stub body as the full payload the Responses API returns; a full body is returned unchanged."""
    if "author" in body:
        answer = {"text": "", "quick_replies": [], "program_ids": [], "ask_contact": False, **body["author"]}
        text = json.dumps(answer, ensure_ascii=False)
        output = [{
            "id": _id("msg", seed, text), "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
        }]
        produced = len(text)
    elif "author_calls" in body:
        output = []
        for n, call in enumerate(body["author_calls"]):
            arguments = json.dumps(call.get("arguments", {}), ensure_ascii=False)
            output.append({
                "id": _id("fc", seed, n), "type": "function_call", "status": "completed",
                "arguments": arguments, "call_id": _id("call", seed, n), "name": call["name"],
            })
        produced = sum(len(item["arguments"]) for item in output) + 20
    else:
        return body
    input_tokens, output_tokens = max(1, request_chars // 3), max(1, produced // 3)
    return {
        "id": _id("resp", seed), "object": "response", "created_at": CREATED_AT, "status": "completed",
        "background": False, "error": None, "incomplete_details": None, "max_output_tokens": None,
        "model": MODEL, "output": output, "parallel_tool_calls": True, "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None}, "service_tier": "default", "store": False,
        "temperature": 1.0, "tool_choice": "auto", "top_p": 1.0, "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None, "metadata": {},
    }


class ScriptedUpstream(httpx.AsyncBaseTransport):
    """Answers the model calls of a case with its authored bodies, in order (faults are left to the
    LiveTransport in front, which re-injects them at their place)."""

    def __init__(self, case_id: str, cassette: list[Exchange]) -> None:
        self.case_id = case_id
        self.bodies = [(exchange.status, exchange.body) for exchange in cassette if not exchange.injected]
        self.position = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        if self.position >= len(self.bodies):
            return httpx.Response(500, json={"error": {"message": f"{self.case_id}: no authored response left"}})
        status, body = self.bodies[self.position]
        self.position += 1
        return httpx.Response(status, json=expand(body, seed=f"{self.case_id}:{self.position}", request_chars=len(content)))

    @property
    def unused(self) -> int:
        return len(self.bodies) - self.position
