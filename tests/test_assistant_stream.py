"""POST /api/assistant/ask as Server-Sent Events.

The real server runs as a process (tests/live_server.py) with its model a fake Responses server that
streams over SSE (tests/fake_responses.py); the client is httpx reading the stream as it comes, one
client hanging up after the first delta. In-process tests cover the flag-less answer and errors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.http.routers.assistant import AskResponse
from adapters.wiring import build_runtime
from agent.errors import UnknownBrand
from agent.streaming import current_live_reply
from agent.types import Inbound, Reply
from tests import openai_fakes as fake
from tests.conftest import app_client, make_settings
from tests.fake_responses import responses_app
from tests.live_server import live_server
from tests.thread_server import ThreadServer

TOKEN = "stream-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANSWER = (
    "Здравствуйте! Для 10 класса подойдёт очный курс подготовки к ЕГЭ по математике. "
    "Занятия идут весь учебный год. Стоимость семестра — 36 900 ₽. Хотите записаться на пробное занятие?"
)
QUESTION = "здравствуйте сын в 10 класе, нужна матиматика к егэ, очно. сколько стоит и когда начало?"


def model_script(body: dict[str, Any], number: int) -> list[dict[str, Any]]:
    if not any(item.get("type") == "function_call_output" for item in body["input"]):
        return [fake.function_call("catalog_search", {"grade": 10, "goal": "ege", "subject": "math", "format": "offline"})]
    return [fake.answer(ANSWER, program_ids=["ege-math-10-11-offline"])]


def parse(block: str) -> tuple[str, dict[str, Any]]:
    event, data = "message", []
    for line in block.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return event, json.loads("\n".join(data))


async def events_of(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Events as they arrive on the wire (blocks end with a blank line)."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk.replace("\r\n", "\n")
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.strip():
                yield parse(block)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """One service process for the module (starting one is the slow part), its model the streaming fake."""
    app = responses_app(model_script, delay=0.3, delta_delay=0.03)
    with ThreadServer(app) as model:
        env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{model.url}/v1", "ASSISTANT_API_TOKEN": TOKEN}
        with live_server(tmp_path_factory.mktemp("sse"), **env) as server:
            yield server.base_url, app


async def test_a_parent_sees_the_answer_grow_then_the_reply(served: tuple[str, Any]) -> None:
    base_url, _ = served
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        seen: list[tuple[float, str, dict[str, Any]]] = []
        body = {"message": QUESTION, "user_id": "parent-1"}
        async with client.stream("POST", "/api/assistant/ask", json=body,
                                 headers={**AUTH, "Accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event, data in events_of(response):
                seen.append((time.monotonic(), event, data))
        plain = await client.post("/api/assistant/ask", json={"message": "А онлайн можно?", "user_id": "parent-2"}, headers=AUTH)
    kinds = [event for _, event, _ in seen]
    assert kinds[0] == "status" and seen[0][2] == {"text": "Подбираю программы…"}
    assert kinds[-1] == "reply" and kinds.count("reply") == 1 and "error" not in kinds
    reply = seen[-1][2]
    assert set(reply) == set(AskResponse.model_fields) == set(plain.json())  # exactly today's reply object
    assert reply["ok"] is True and reply["engine"] == "model" and reply["text"].startswith(ANSWER)
    assert [card["id"] for card in reply["cards"]] == ["ege-math-10-11-offline"]
    deltas = [data["text"] for _, event, data in seen if event == "delta"]
    assert len(deltas) >= 3  # one per checked sentence
    assert all(reply["text"].startswith(text) for text in deltas)
    assert [len(t) for t in deltas] == sorted(set(len(t) for t in deltas))
    first_delta = next(at for at, event, _ in seen if event == "delta")
    assert first_delta < seen[-1][0]  # really streamed: text arrived before the reply, not all at once


async def test_a_client_that_hangs_up_mid_stream_still_gets_its_turn_stored_once(served: tuple[str, Any]) -> None:
    base_url, model = served
    calls_before = len(model.state.seen)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        body = {"message": QUESTION, "user_id": "parent-3", "stream": True}
        async with client.stream("POST", "/api/assistant/ask", json=body, headers=AUTH) as response:
            async for event, _ in events_of(response):
                if event == "delta":
                    break  # the parent closes the Mini App while the answer is being written
        admin = ("admin", "a-long-test-password")
        deadline = time.monotonic() + 20
        messages: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            listing = (await client.get("/admin/conversations", auth=admin)).json()
            mine = [c for c in listing["items"] if c["user"]["external_id"] == "parent-3"]
            if mine:
                found = (await client.get(f"/admin/conversations/{mine[0]['id']}", auth=admin)).json()
                messages = found["messages"]
                if any(m["role"] == "assistant" for m in messages):
                    break
            await asyncio.sleep(0.2)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"].startswith(ANSWER)
    assert len(model.state.seen) - calls_before == 2  # one turn of the model: its tool round and its answer


# ---------------------------------------------------------------- in-process


class ScriptedAssistant:
    """Shows a sentence live, then answers or fails (what the SSE layer does with either)."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure

    async def handle(self, inbound: Inbound) -> Reply:
        live = current_live_reply()
        if live is not None:
            live.text("Здравствуйте!")
        if self.failure is not None:
            raise self.failure
        return Reply(text="Здравствуйте! Чем помочь?", conversation_id=7)


async def ask(tmp_path: Path, assistant: Any, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    settings = make_settings(tmp_path, assistant_api_token=TOKEN)
    runtime = build_runtime(settings, assistant=assistant)
    async for client in app_client(settings, runtime):
        return await client.post("/api/assistant/ask", json=body, headers={**AUTH, **headers})
    raise AssertionError("unreachable")


def all_events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    return [parse(block) for block in response.text.replace("\r\n", "\n").split("\n\n") if block.strip()]


async def test_without_the_flag_the_answer_is_json_as_before(tmp_path: Path) -> None:
    response = await ask(tmp_path, ScriptedAssistant(), {"message": "привет", "user_id": "u1"}, {})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True, "text": "Здравствуйте! Чем помочь?", "quick_replies": [], "cards": [], "actions": [],
                               "conversation_id": 7, "lead_id": None, "silent": False, "engine": "offline", "manager_messages": []}


async def test_a_failure_mid_stream_ends_with_an_error_event(tmp_path: Path) -> None:
    response = await ask(tmp_path, ScriptedAssistant(RuntimeError("database went away")),
                         {"message": "привет", "user_id": "u1", "stream": True}, {})
    assert all_events(response) == [("delta", {"text": "Здравствуйте!"}), ("error", {"ok": False, "reason": "internal_error"})]
    assert "database" not in response.text


async def test_an_error_the_core_raises_names_its_reason(tmp_path: Path) -> None:
    response = await ask(tmp_path, ScriptedAssistant(UnknownBrand("nope")), {"message": "привет", "user_id": "u1"},
                         {"Accept": "text/event-stream"})
    assert all_events(response)[-1] == ("error", {"ok": False, "reason": "invalid_request", "field": "brand",
                                                  "detail": "unknown brand 'nope'"})


async def test_checks_and_limits_still_answer_before_any_stream(tmp_path: Path) -> None:
    response = await ask(tmp_path, ScriptedAssistant(), {"message": " ", "user_id": "u1", "stream": True}, {})
    assert response.status_code == 422 and response.json()["reason"] == "invalid_request"
