"""The hot GET paths answered from ready bytes (catalog answers, health, diagnostics) and the cheap
access log; their speed is measured by bench/http_hot_paths.py, not here."""

from __future__ import annotations

import io
import json
import logging
from datetime import date
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.http.access_log import AccessLog
from adapters.http.app import create_app
from adapters.wiring import build_runtime
from tests.clock import Clock
from agent.catalog import read_catalog
from agent.logging_setup import configure_logging
from tests.conftest import REPO, make_settings

QUERY = {"grade": "8", "goal": "camp", "subject": "math", "format": "offline"}


async def _serve(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path)
    today = Clock(date(2026, 10, 1))
    runtime = build_runtime(settings, today=today)
    app = create_app(settings, runtime=runtime)
    return app, runtime, today


async def test_catalog_answers_are_computed_once_per_normalised_query(tmp_path: Path) -> None:
    app, runtime, today = await _serve(tmp_path)
    calls = 0
    search = runtime.catalog.search

    def counting_search(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return search(*args, **kwargs)  # type: ignore[arg-type]

    runtime.catalog.search = counting_search  # type: ignore[method-assign]
    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            first = await client.get("/api/catalog/search", params=QUERY)
            # Same criteria in another order, a blank criterion, an unknown parameter: one entry.
            again = await client.get("/api/catalog/search?format=offline&subject=math&goal=camp&grade=8&utm=x&brand=")
            blank = await client.get("/api/catalog/search", params={**QUERY, "format": ""})
            invalid = await client.get("/api/catalog/search", params={**QUERY, "grade": "15"})
            invalid_again = await client.get("/api/catalog/search", params={**QUERY, "grade": "15"})
            unknown_brand = await client.get("/api/catalog/search", params={**QUERY, "brand": "nope"})
            spaced_brand = await client.get("/api/catalog/search", params={**QUERY, "brand": " "})
            assert calls == 4  # first, blank, and the two brands that raised (never kept)
            # A reloaded catalog (a new object) or a new school day drops every entry.
            runtime.catalog = read_catalog(REPO / "catalog")[0]
            runtime.catalog.search = counting_search  # type: ignore[method-assign]
            reloaded = await client.get("/api/catalog/search", params=QUERY)
            today.now = date(2027, 2, 1)
            next_day = await client.get("/api/catalog/search", params=QUERY)
    assert first.status_code == again.status_code == blank.status_code == 200
    assert first.content == again.content == reloaded.content
    assert first.json()["items"][0]["next_start_text"].startswith("03.01.2027")
    assert not next_day.json()["items"][0]["next_start_text"].startswith("03.01.2027")  # the winter camp has begun
    assert invalid.status_code == invalid_again.status_code == 422
    assert unknown_brand.status_code == spaced_brand.status_code == 422
    assert calls == 6
    assert len(app.state.catalog_answers) == 1


async def test_catalog_answers_are_bounded(tmp_path: Path) -> None:
    app, _, _ = await _serve(tmp_path)
    async with LifespanManager(app) as manager:
        app.state.catalog_answers.max_entries = 5
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            for grade in range(1, 12):
                assert (await client.get("/api/catalog/search", params={"grade": grade})).status_code == 200
    assert len(app.state.catalog_answers) == 5


async def test_diagnostics_are_at_most_a_second_old(tmp_path: Path) -> None:
    app, _, _ = await _serve(tmp_path)
    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            first = await client.get("/api/runtime/diagnostics")
            second = await client.get("/api/runtime/diagnostics")
            app.state.diagnostics.ttl = 0  # a stale answer is rebuilt
            third = await client.get("/api/runtime/diagnostics")
    assert first.content == second.content
    assert first.json()["ok"] is True and third.json()["ok"] is True
    assert first.headers["content-type"] == "application/json"


def test_access_log_lines_are_json_with_the_request_redacted() -> None:
    secret = "123456789:AAAbbbCCCdddEEEfffGGGhhhIIIjjjKKKlll"
    configure_logging("INFO", [secret], json=True)
    stream = io.StringIO()
    access = AccessLog(stream=stream)
    assert access.enabled
    scope = {"method": "POST", "path": f"/bot/{secret}", "raw_path": f'/bot/{secret}/"x"'.encode(),
             "query_string": b"a=1", "http_version": "1.1", "client": ("127.0.0.1", 5000)}
    import asyncio

    async def record() -> None:
        access.record(scope, 201, 0.0, "req-1")
        access.record(scope, 201, 0.0, "req-2")

    asyncio.run(record())
    access.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["req-1", "req-2"]
    assert lines[0]["logger"] == "access" and lines[0]["level"] == "INFO"
    assert lines[0]["message"] == '127.0.0.1:5000 - "POST /bot/***/"x"?a=1 HTTP/1.1" 201'
    assert secret not in stream.getvalue()


def test_access_log_is_off_above_info() -> None:
    configure_logging("WARNING", [], json=True)
    try:
        assert AccessLog(stream=io.StringIO()).enabled is False
    finally:
        configure_logging("INFO", [], json=True)
        logging.getLogger().setLevel(logging.INFO)


async def test_access_log_lines_are_written_when_the_application_shuts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    # The last lines of a run used to wait for the interpreter's exit (after pytest's summary, after
    # the server's own shutdown lines); the lifespan's end writes them.
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from adapters.http import access_log
    from adapters.http.middleware import RequestContextMiddleware

    monkeypatch.setattr(access_log, "FLUSH_SECONDS", 3600)  # only the shutdown can write the line
    configure_logging("INFO", [], json=True)
    stream = io.StringIO()
    inner = Starlette(routes=[Route("/ping", lambda request: PlainTextResponse("pong"))])
    app = RequestContextMiddleware(inner, access_log=AccessLog(stream=stream))
    async with LifespanManager(app) as manager:  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            assert (await client.get("/ping", headers={"x-request-id": "last-one"})).status_code == 200
        assert stream.getvalue() == ""  # still buffered
    assert json.loads(stream.getvalue())["request_id"] == "last-one"


def test_access_logs_are_not_kept_alive_until_exit() -> None:
    # One atexit hook for all of them, not a hook (holding the instance and its buffer) per instance.
    import gc
    import weakref

    ref = weakref.ref(AccessLog(stream=io.StringIO()))
    gc.collect()
    assert ref() is None


def test_serve_runs_on_the_event_loop_uvicorn_picks() -> None:
    """`serve` ran its server under a plain asyncio.run: the pure-Python loop, not uvloop (which
    uvicorn.run and the WEB_CONCURRENCY workers use), a sixth of every endpoint's requests/s."""
    import asyncio

    import uvicorn
    import uvloop

    from adapters.main import run_server, server_config

    loops: list[type] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            await receive()
            loops.append(type(asyncio.get_running_loop()))
            server.should_exit = True
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})

    server = uvicorn.Server(server_config(app, "127.0.0.1", 0))
    assert run_server(server)
    assert loops == [uvloop.Loop]
