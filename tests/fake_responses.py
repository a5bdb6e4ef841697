"""A fake Responses API for a real HTTP server on 127.0.0.1 (tests/thread_server.py, bench/): the SDK
talks HTTP to it exactly as to api.openai.com. ``responses_app`` scripts answers and records requests
(tests); ``constant_app`` answers everything alike at the least cost (``python -m tests.fake_responses``,
the benchmark's server)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests import openai_fakes as fake

# (request body, request number) -> the output items of the answer
Script = Callable[[dict[str, Any], int], list[dict[str, Any]]]


def responses_app(script: Script, *, delay: float = 0.0) -> Starlette:
    numbers = itertools.count()
    seen: list[dict[str, Any]] = []

    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        number = next(numbers)
        if delay:
            await asyncio.sleep(delay)
        return JSONResponse(fake.response(*script(body, number)).json())

    app = Starlette(routes=[Route("/v1/responses", create, methods=["POST"])])
    app.state.seen = seen
    return app


def constant_app(output: list[dict[str, Any]], *, delay: float) -> Any:
    """The same answer to every request, after ``delay`` seconds, for benchmarks: a bare ASGI app with the
    body serialised once, so the server's own CPU per request (parsing, building the answer) stays out
    of what the benchmark measures, as a remote API's would."""
    body = fake.response(*output).content
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: nothing to set up
            return
        while (await receive()).get("more_body", False):
            pass
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

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
    args = parser.parse_args()
    app = constant_app(greeting({}, 0), delay=args.delay)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, backlog=1024, lifespan="off")


if __name__ == "__main__":
    main()
