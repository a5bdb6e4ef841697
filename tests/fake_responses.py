"""A fake Responses API for a real HTTP server on 127.0.0.1 (tests/thread_server.py, bench/): the SDK
talks HTTP to it exactly as to api.openai.com. ``responses_app`` scripts answers and records requests
(tests); ``constant_app`` answers everything alike at the least cost (``python -m tests.fake_responses``,
the benchmark's server). A request with ``"stream": true`` is answered as the real API does, with
server-sent events (evals/streams.py), the text deltas spaced by ``delta_delay`` seconds like a model
writing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from evals import streams
from tests import openai_fakes as fake

# (request body, request number) -> the output items of the answer
Script = Callable[[dict[str, Any], int], list[dict[str, Any]]]


def event_chunks(response: dict[str, Any]) -> list[tuple[bytes, bool]]:
    """The stream of ``response`` as wire chunks, each flagged when it is a text delta (a model's pace)."""
    return [(streams.encode([event]), event[0] == "response.output_text.delta") for event in streams.response_events(response)]


async def paced(chunks: list[tuple[bytes, bool]], delta_delay: float) -> Any:
    for chunk, is_delta in chunks:
        if is_delta and delta_delay:
            await asyncio.sleep(delta_delay)
        yield chunk


def responses_app(script: Script, *, delay: float = 0.0, delta_delay: float = 0.0) -> Starlette:
    """``delay`` before the answer starts (the model's time to first token), ``delta_delay`` between
    streamed text deltas."""
    numbers = itertools.count()
    seen: list[dict[str, Any]] = []

    async def create(request: Request) -> Response:
        body = await request.json()
        seen.append(body)
        number = next(numbers)
        if delay:
            await asyncio.sleep(delay)
        answer = fake.response(*script(body, number)).json()
        if body.get("stream"):
            return StreamingResponse(paced(event_chunks(answer), delta_delay), media_type="text/event-stream")
        return JSONResponse(answer)

    app = Starlette(routes=[Route("/v1/responses", create, methods=["POST"])])
    app.state.seen = seen
    return app


def constant_app(output: list[dict[str, Any]], *, delay: float, delta_delay: float = 0.0) -> Any:
    """The same answer to every request, after ``delay`` seconds, for benchmarks: a bare ASGI app with the
    body (and its stream) serialised once, so the server's own CPU per request (parsing, building the
    answer) stays out of what the benchmark measures, as a remote API's would. A streamed request gets
    the events one chunk each, text deltas ``delta_delay`` apart."""
    body = fake.response(*output).content
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    chunks = event_chunks(fake.response(*output).json())
    stream_headers = [(b"content-type", b"text/event-stream")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: nothing to set up
            return
        request = b""
        while True:
            message = await receive()
            request += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await asyncio.sleep(delay)
        if b'"stream":true' not in request.replace(b" ", b""):
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": 200, "headers": stream_headers})
        async for chunk in paced(chunks, delta_delay):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def greeting(body: dict[str, Any], number: int) -> list[dict[str, Any]]:
    """The default script: every call is answered with a short final answer (one call per turn)."""
    return [fake.answer("Здравствуйте! Подскажите, пожалуйста, класс ребёнка.")]


def main() -> None:
    """`python -m tests.fake_responses --port P --delay S`: a standalone server for benchmarks."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--delta-delay", type=float, default=0.0, help="seconds between streamed text deltas")
    args = parser.parse_args()
    app = constant_app(greeting({}, 0), delay=args.delay, delta_delay=args.delta_delay)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, backlog=1024, lifespan="off")


if __name__ == "__main__":
    main()
