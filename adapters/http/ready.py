"""Answers kept as ready bytes for the hot GET endpoints (bench/http_hot_paths.py measures them).

- ``DatabaseHealth``: GET /api/health answers from the last database check, which a background task
  repeats every ``interval`` seconds (a round trip per request capped health at a fifth of the
  framework's rate). A failed check turns the answer into 503 at once; an answer older than
  ``3 × interval`` (the task stalled) is checked again in the request itself.
- ``TtlAnswer``: bytes rebuilt at most once per ``ttl`` (diagnostics: its queue counts are a query).
- ``json_bytes`` / ``ready_json``: orjson encoding and a response around bytes encoded earlier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from starlette.responses import Response

log = logging.getLogger(__name__)

JSON = "application/json"


def json_bytes(value: object) -> bytes:
    return orjson.dumps(value)


def ready_json(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type=JSON)


class DatabaseHealth:
    def __init__(
        self,
        ping: Callable[[], Awaitable[None]],
        up: dict[str, object],
        *,
        interval: float = 1.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ping = ping
        self._up = json_bytes({"ok": True, **up})
        self.interval = interval
        self.timeout = timeout
        self._clock = clock
        self.status = 503
        self.body = json_bytes({"ok": False, "reason": "starting"})
        self.checked_at = float("-inf")

    async def check(self) -> None:
        try:
            await asyncio.wait_for(self._ping(), self.timeout)
        except Exception as error:
            if self.status == 200:
                log.warning("database check failed: %s", type(error).__name__)
            self.status = 503
            self.body = json_bytes({"ok": False, "reason": "database_unavailable", "detail": type(error).__name__})
        else:
            self.status, self.body = 200, self._up
        self.checked_at = self._clock()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def answer(self) -> tuple[int, bytes]:
        if self._clock() - self.checked_at > 3 * self.interval:
            await self.check()
        return self.status, self.body


class TtlAnswer:
    """``build()`` at most once per ``ttl`` seconds; concurrent requests share one build."""

    def __init__(self, build: Callable[[], Awaitable[bytes]], ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._build = build
        self.ttl = ttl
        self._clock = clock
        self._body: bytes | None = None
        self._built_at = float("-inf")
        self._pending: asyncio.Future[bytes] | None = None

    async def get(self) -> bytes:
        if self._body is not None and self._clock() - self._built_at < self.ttl:
            return self._body
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._rebuild())
        return await asyncio.shield(self._pending)

    async def _rebuild(self) -> bytes:
        try:
            self._body = await self._build()
            self._built_at = self._clock()
            return self._body
        finally:
            self._pending = None
