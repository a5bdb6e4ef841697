"""Pure ASGI middleware (BaseHTTPMiddleware costs most of the throughput on the webhook hot path)."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.access_log import AccessLog
from adapters.http.request_checks import cross_site_problem, json_problem, read_headers, url_problem
from agent.logging_setup import request_id_var

MAX_BODY_BYTES = 1024 * 1024
# New request ids: random per process, then a counter (os.urandom per request costs a system call).
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count(1)
_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._-]{1,64}")
JSON_TYPE = (b"content-type", b"application/json")

# A POST route answered in this layer, before FastAPI: (status, JSON body) for the request.
Answer = Callable[[Scope, Receive], Awaitable[tuple[int, bytes]]]


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                JSON_TYPE,
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    """The outermost layer, one pass for what every request needs (each extra ASGI layer costs a
    coroutine and a wrapped ``send`` per request, measured by bench/http_hot_paths.py):

    - the request id: a sane X-Request-ID from the client or a new one, echoed on the response and
      put in the logs;
    - the body limit: a declared Content-Length over ``max_bytes`` gets 413 before the app reads
      anything; a chunked body is read up to the limit first (a declared length bounds what the
      server passes on, so only chunked bodies need counting);
    - the request checks (adapters/http/request_checks.py): control characters in the URL, admin
      changes sent from another site, JSON nested too deep or carrying control characters;
    - the access log line (adapters/http/access_log.py);
    - ``answers``: POST paths answered right here, which read and check their bodies themselves (the
      Telegram webhook's hot path: adapters/telegram/webhook.py), with no ASGI layer below this one.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        access_log: AccessLog | None = None,
        answers: Mapping[str, Answer] | None = None,
    ) -> None:
        self.app = app
        self.answers = dict(answers or {})
        self.max_bytes = max_bytes
        self.access_log = access_log if access_log is not None else AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._flush_at_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = read_headers(scope)
        incoming = headers.get(b"x-request-id")
        declared = headers.get(b"content-length")
        chunked = b"transfer-encoding" in headers
        json_body = b"json" in headers.get(b"content-type", b"")
        request_id = incoming.decode("latin-1") if incoming and _REQUEST_ID_RE.fullmatch(incoming) else f"{_ID_PREFIX}{next(_ids):08x}"
        id_header = (b"x-request-id", request_id.encode())
        token = request_id_var.set(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            problem = url_problem(scope["path"], scope["query_string"])
            if problem is not None:
                await send_json(send_with_id, 422, problem)
                return
            refused = cross_site_problem(scope, headers)
            if refused is not None:
                await send_json(send_with_id, 403, refused)
                return
            if declared is not None:
                try:
                    too_big = int(declared) > self.max_bytes
                except ValueError:
                    await send_json(send_with_id, 400, {"ok": False, "reason": "invalid_content_length"})
                    return
                if too_big:
                    await send_json(send_with_id, 413, _too_large(self.max_bytes))
                    return
            answer = self.answers.get(scope["path"]) if scope["method"] == "POST" else None
            if answer is not None:
                status, payload = await answer(scope, receive)
                length = (b"content-length", str(len(payload)).encode())
                await send({"type": "http.response.start", "status": status, "headers": [JSON_TYPE, length, id_header]})
                await send({"type": "http.response.body", "body": payload})
                return
            if not (chunked or (declared not in (None, b"0") and json_body)):
                await self.app(scope, receive, send_with_id)
                return
            # A chunked body is read here up to the limit (the app's own parser would turn the
            # overflow into a 400); a JSON body is checked before any handler parses it.
            body = await read_body(receive, self.max_bytes)
            if body is None:
                await send_json(send_with_id, 413, _too_large(self.max_bytes))
                return
            if json_body:
                found = json_problem(body)
                if found is not None:
                    await send_json(send_with_id, *found)
                    return
            await self.app(scope, _replay(body, receive), send_with_id)
        finally:
            request_id_var.reset(token)
            if self.access_log.enabled:
                self.access_log.record(scope, status, started, request_id)


    def _flush_at_shutdown(self, send: Send) -> Send:
        """``send`` for the lifespan: the buffered access lines are written as the shutdown ends."""

        async def send_and_flush(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self.access_log.flush()
            await send(message)

        return send_and_flush


def _too_large(max_bytes: int) -> dict[str, Any]:
    return {"ok": False, "reason": "body_too_large", "max_bytes": max_bytes}


async def read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole body, or None once it passes ``max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away; the app sees an empty or partial body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read ahead as one message, then the real channel (a streaming answer listens on it
    for the client's disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
