"""Server-level limits on a real server on 127.0.0.1 (issue 20, finding 2): huge heads are refused before
they are buffered, a head or body trickled in is cut off, ordinary keep-alive traffic is untouched.

Bounded traffic only: at most 3 × 16 MB per test, loops end by count and time."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import LiveServer, live_server

CHUNK = b"a" * 65536


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"SERVER_HEADER_TIMEOUT_SECONDS": "2", "SERVER_BODY_TIMEOUT_SECONDS": "2", "STARTUP_PREFLIGHT_MODE": "off"}
    with live_server(tmp_path_factory.mktemp("limits"), **env) as running:
        # The knowledge index is built after health (issue 18): its imports and build grow the RSS that
        # the memory test measures, so the tests start once it is done.
        running.wait_for_log("knowledge-index ready")
        yield running


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _read_all(sock: socket.socket, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _rss_kib(server: LiveServer) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def _send_huge_header(server: LiveServer, megabytes: int = 16) -> tuple[bytes, int]:
    """A header value of up to ``megabytes`` MB, sent until the server stops reading; its answer."""
    sock = _connect(server)
    sent = 0
    try:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        while sent < megabytes * 1024 * 1024:
            sock.sendall(CHUNK)
            sent += len(CHUNK)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    answer = _read_all(sock, timeout=5)
    sock.close()
    return answer, sent


def test_ordinary_keep_alive_requests_pass(server: LiveServer) -> None:
    sock = _connect(server)
    request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sock.sendall(request + request)
    sock.settimeout(5)
    data = b""
    deadline = time.monotonic() + 5
    while data.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
        data += sock.recv(65536)
    sock.close()
    assert data.count(b"HTTP/1.1 200") == 2


def test_huge_headers_are_refused_without_growing_memory(server: LiveServer) -> None:
    before = _rss_kib(server)
    answers = [_send_huge_header(server) for _ in range(3)]
    time.sleep(0.5)
    after = _rss_kib(server)
    for answer, sent in answers:
        assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
        assert sent < 16 * 1024 * 1024, "the server kept reading a 16 MB header"
    assert after - before < 20 * 1024, f"RSS grew from {before} to {after} KiB"


def test_too_many_header_lines_are_refused(server: LiveServer) -> None:
    sock = _connect(server)
    headers = b"".join(b"X-H%d: 1\r\n" % n for n in range(150))
    sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
    answer = _read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431")


def test_a_trickled_head_is_cut_off(server: LiveServer) -> None:
    """One header line every half second: the head must be complete within SERVER_HEADER_TIMEOUT_SECONDS."""
    sock = _connect(server)
    started = time.monotonic()
    sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    closed = False
    for n in range(20):  # at most 10 s
        time.sleep(0.5)
        try:
            sock.sendall(b"X-Trickle-%d: 1\r\n" % n)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    answer = _read_all(sock, timeout=2)
    sock.close()
    assert closed or answer, "the connection stayed open for 10 s"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert time.monotonic() - started < 6


def test_a_trickled_body_is_cut_off(server: LiveServer) -> None:
    sock = _connect(server)
    sock.sendall(
        b"POST /api/assistant/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{\"message\": "
    )
    started = time.monotonic()
    answer = _read_all(sock, timeout=8)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert time.monotonic() - started < 6
