"""Limits on what one connection may make the server hold before the application sees a request.

uvicorn's httptools protocol (the fast one, used when httptools is installed) has no limit on the size of
a request head and no timeout for reading it: three connections sending 64 MB header values took the
process from 268 to 488 MB, and a client trickling one header line every 2 s held its connection for as
long as it liked. This subclass adds what is missing, counting raw bytes before the parser buffers them:

- the head (request line + headers) may be at most SERVER_MAX_HEADER_BYTES (32 KiB) and carry at most
  SERVER_MAX_HEADERS (100) header lines → 431 and the connection is closed;
- the whole head must arrive within SERVER_HEADER_TIMEOUT_SECONDS (10) of its first byte → 408, closed;
- a body must arrive within SERVER_BODY_TIMEOUT_SECONDS (30) of the head → 408 (or a plain close once a
  response has started).

uvicorn's own settings cover the rest (adapters/main.py ``server_config``): idle keep-alive connections
close after SERVER_KEEP_ALIVE_SECONDS, SERVER_LIMIT_CONCURRENCY connections/tasks at once (503 beyond),
and the h11 protocol gets the same head limit through ``h11_max_incomplete_event_size``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class ServerLimits:
    max_head_bytes: int = 32 * 1024
    max_headers: int = 100
    head_timeout: float = 10.0
    body_timeout: float = 30.0


def _response(status: bytes, reason: str) -> bytes:
    body = b'{"ok":false,"reason":"' + reason.encode() + b'"}'
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


TOO_LARGE = _response(b"431 Request Header Fields Too Large", "request_header_fields_too_large")
HEAD_TIMEOUT = _response(b"408 Request Timeout", "request_header_timeout")
BODY_TIMEOUT = _response(b"408 Request Timeout", "request_body_timeout")


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``limits`` (uvicorn's ``http`` setting takes the class; a
    module-level class, so WEB_CONCURRENCY's spawned workers can import it by name)."""

    limits = ServerLimits()  # set by ``use_limits`` (each worker process does it for itself)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._head_lines = 0
        self._tail = b""  # the last bytes of the previous chunk: a head end split across two reads
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._in_body = False  # the head is complete, the body is not yet

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head and not self._count_head(data):
            return
        super().data_received(data)
        # A timer only where this chunk left a head or a body unfinished: most requests arrive whole
        # in one read, and arming then cancelling two timers cost each request ~3 % of its CPU.
        if self._timer is None and not self._closed:
            if self._in_head and self._head_bytes:
                self._timer = self.loop.call_later(self.limits.head_timeout, self._head_too_slow)
            elif self._in_body:
                self._timer = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._cancel_timer()
        self._in_body = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False
        self._start_head()  # the next request on this connection (keep-alive) starts a new head

    # ------------------------------------------------------------------ the head

    def _start_head(self) -> None:
        self._cancel_timer()
        self._in_head, self._head_bytes, self._head_lines, self._tail = True, 0, 0, b""

    def _count_head(self, data: bytes) -> bool:
        """Count the head's bytes and lines; False when the connection was refused."""
        joined = self._tail + data
        end = joined.find(HEAD_END)
        head_part = data if end < 0 else joined[len(self._tail):end + len(HEAD_END)]
        self._head_bytes += len(head_part)
        self._head_lines += head_part.count(b"\n")
        if self._head_bytes > self.limits.max_head_bytes or self._head_lines > self.limits.max_headers + 2:
            self._refuse(TOO_LARGE)
            return False
        if end >= 0:
            self._in_head = False  # the body (or a pipelined request) follows: not ours to count
        else:
            self._tail = joined[-(len(HEAD_END) - 1):]
        return True

    def _head_too_slow(self) -> None:
        self._timer = None
        if self._in_head and self._head_bytes and not self._closed:
            self._refuse(HEAD_TIMEOUT)

    def _body_too_slow(self) -> None:
        self._timer = None
        if self._closed or self._in_head:
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self._refuse(BODY_TIMEOUT)
        else:
            self.transport.close()

    def _refuse(self, answer: bytes) -> None:
        self._cancel_timer()
        self._closed = True
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def use_limits(limits: ServerLimits) -> type[LimitedHttpToolsProtocol]:
    LimitedHttpToolsProtocol.limits = limits
    return LimitedHttpToolsProtocol
