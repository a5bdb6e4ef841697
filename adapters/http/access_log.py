"""The HTTP access log: one line per request, written in batches.

uvicorn's access log sends every request through the logging module, the redacting filter and the
JSON formatter: ~50 µs a request on the 2-core machine, about as much as FastAPI spends answering
GET /api/health (bench/http_hot_paths.py). This writes the same kind of line for a few µs: the
line is built with orjson (or as text on a terminal, like every other log line), the request target
is redacted once per distinct target (hot paths repeat), and lines are written to stderr together
at most ``FLUSH_SECONDS`` after the request, or at once when ``MAX_BUFFERED`` lines wait, and at the
application's shutdown (RequestContextMiddleware flushes when the lifespan ends, so the last lines come
before the shutdown's own log lines, not at interpreter exit). Enabled when the ``access`` logger logs
INFO (LOG_LEVEL=INFO, the default); LOG_LEVEL=WARNING turns it off.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
import weakref
from typing import TextIO

import orjson

from agent.logging_setup import Redactor, log_format

FLUSH_SECONDS = 0.1
MAX_BUFFERED = 256
_MAX_TARGETS = 4096  # distinct redacted request targets kept (the route set is small; ids vary)
LOGGER = "access"
# Every live access log, flushed once at interpreter exit by one atexit hook (a hook per instance kept
# every instance, with its buffer, alive until exit: one per app built, in tests thousands).
_LIVE: weakref.WeakSet[AccessLog] = weakref.WeakSet()


def flush_all() -> None:
    for access_log in list(_LIVE):
        access_log.flush()


atexit.register(flush_all)

# Query strings of admin routes are personal data (a search by phone, a client's name) or signed links.
_PRIVATE_QUERY_PREFIXES = (b"/admin", b"/api/kb/", b"/api/crm/")
REDACTED_QUERY = b"<redacted>"

class AccessLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        json_lines, redactor = log_format()
        self.enabled = logging.getLogger(LOGGER).isEnabledFor(logging.INFO)
        self._json = json_lines
        self._redactor: Redactor = redactor
        self._stream = stream
        self._lines: list[str] = []
        self._requests: dict[tuple[str, bytes, str], str] = {}
        self._second = -1
        self._stamp = ""
        self._timer: asyncio.TimerHandle | None = None
        _LIVE.add(self)

    def record(self, scope: dict, status: int, started: float, request_id: str) -> None:
        now = time.time()
        millis = (time.perf_counter() - started) * 1000
        request = self._request(scope)
        client = scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else "-"
        stamp = self._timestamp(now)
        if self._json:
            # Built by hand from pieces that need no escaping (numbers, ids matching [A-Za-z0-9._-],
            # the client address) and the request line, escaped once per distinct request line.
            line = (
                f'{{"time": "{stamp}", "level": "INFO", "logger": "{LOGGER}", "message": "{where} - {request} {status}", '
                f'"request_id": "{request_id}", "update_id": null, "duration_ms": {millis:.2f}}}'
            )
        else:
            line = f"{stamp[11:19]} INFO    {LOGGER} [req={request_id}]: {where} - {request} {status} {millis:.2f} ms"
        self._lines.append(line)
        if len(self._lines) >= MAX_BUFFERED:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        stream = self._stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # stderr closed at interpreter exit: nothing to do
            pass

    def _request(self, scope: dict) -> str:
        """'"GET /path?query HTTP/1.1"', redacted, and JSON-escaped for JSON lines."""
        raw = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string")
        if query and raw.startswith(_PRIVATE_QUERY_PREFIXES):
            query = REDACTED_QUERY  # admin searches carry phones and names (?q=%2B7916…)
        key = (scope["method"], raw + b"?" + query if query else raw, scope["http_version"])
        request = self._requests.get(key)
        if request is None:
            if len(self._requests) >= _MAX_TARGETS:
                self._requests.clear()
            text = f'"{key[0]} {self._redactor(key[1].decode("latin-1"))} HTTP/{key[2]}"'
            request = self._requests[key] = orjson.dumps(text).decode()[1:-1] if self._json else text
        return request

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int((now - second) * 1000):03d}"
