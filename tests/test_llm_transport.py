"""agent/llm.py on production's transport (the SDK over aiohttp) against a real server on 127.0.0.1:
answers, retries, Retry-After, timeouts, refused connections and non-JSON pages behave as with respx."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from agent.errors import ModelUnavailable
from agent.llm import LLM
from agent.loop import answer_format
from tests import openai_fakes as fake
from tests.conftest import make_settings
from tests.thread_server import ThreadServer

pytestmark = pytest.mark.real_transport

# (request number) -> the answer to send
Script = list[Response]


def scripted_server(script: Script, seen: list[dict[str, Any]], *, delay: float = 0.0) -> Starlette:
    async def create(request: Request) -> Response:
        seen.append({"body": await request.json(), "authorization": request.headers.get("authorization")})
        if delay:
            await asyncio.sleep(delay)
        return script[min(len(seen), len(script)) - 1]

    return Starlette(routes=[Route("/v1/responses", create, methods=["POST"])])


def answer() -> Response:
    payload = fake.response(fake.answer("Здравствуйте!"), input_tokens=40, output_tokens=5)
    return Response(payload.content, status_code=200, media_type="application/json")


def make_llm(tmp_path: Path, url: str, delays: list[float], **overrides: Any) -> LLM:
    async def record_sleep(seconds: float) -> None:
        delays.append(seconds)

    values: dict[str, Any] = {"openai_api_key": "sk-transport-test", "openai_base_url": f"{url}/v1", "openai_max_retries": 2}
    values.update(overrides)
    return LLM(make_settings(tmp_path, **values), sleep=record_sleep)


async def respond(llm: LLM) -> Any:
    return await llm.respond(instructions="be nice", input_items=[{"role": "user", "content": "привет"}],
                             tools=[], answer_format=answer_format())


async def test_production_transport_is_aiohttp_and_sends_the_key_and_body(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    with ThreadServer(scripted_server([answer()], seen)) as server:
        llm = make_llm(tmp_path, server.url, [])
        assert isinstance(llm._http, httpx2.AsyncClient) and "Aiohttp" in type(llm._http).__mro__[1].__name__
        try:
            turn = await respond(llm)
        finally:
            await llm.aclose()
    assert llm._http.is_closed
    assert turn.text.startswith("{") and "Здравствуйте!" in turn.text and turn.usage.total_tokens == 45
    assert seen[0]["authorization"] == "Bearer sk-transport-test"
    assert seen[0]["body"]["instructions"] == "be nice" and seen[0]["body"]["store"] is False


async def test_server_errors_are_retried_and_retry_after_is_honoured(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    script = [
        JSONResponse({"error": {"message": "busy", "type": "server_error"}}, status_code=500),
        JSONResponse({"error": {"message": "slow down", "type": "rate_limit"}}, status_code=429, headers={"retry-after": "3"}),
        answer(),
    ]
    delays: list[float] = []
    with ThreadServer(scripted_server(script, seen)) as server:
        llm = make_llm(tmp_path, server.url, delays)
        try:
            turn = await respond(llm)
        finally:
            await llm.aclose()
    assert len(seen) == 3 and "Здравствуйте!" in turn.text
    assert len(delays) == 2 and delays[1] == 3.0


@pytest.mark.parametrize(
    "page",
    [
        HTMLResponse("<html>proxy login</html>", status_code=200),
        JSONResponse({"error": {"message": "bad key", "type": "invalid_request_error"}}, status_code=401),
    ],
    ids=["html-200", "401"],
)
async def test_a_page_that_is_not_a_response_makes_the_model_unavailable(tmp_path: Path, page: Response) -> None:
    seen: list[dict[str, Any]] = []
    with ThreadServer(scripted_server([page], seen)) as server:
        llm = make_llm(tmp_path, server.url, [])
        try:
            with pytest.raises(ModelUnavailable):
                await respond(llm)
        finally:
            await llm.aclose()
    assert len(seen) == 1  # neither is retried


async def test_a_read_timeout_is_retried_then_reported(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    with ThreadServer(scripted_server([answer()], seen, delay=1.0)) as server:
        llm = make_llm(tmp_path, server.url, [], openai_timeout_seconds=0.2, openai_max_retries=1)
        try:
            with pytest.raises(ModelUnavailable, match="Timeout"):
                await respond(llm)
        finally:
            await llm.aclose()
    assert len(seen) == 2


async def test_a_refused_connection_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delays: list[float] = []
    llm = make_llm(tmp_path, f"http://127.0.0.1:{port}", delays)
    try:
        with pytest.raises(ModelUnavailable):
            await respond(llm)
    finally:
        await llm.aclose()
    assert len(delays) == 2  # three attempts
