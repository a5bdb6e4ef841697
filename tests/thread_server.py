"""Serve an ASGI app for real on 127.0.0.1 in a background thread (fakes of outside services)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

START_TIMEOUT_SECONDS = 5.0


def free_port() -> int:
    """A port free on 127.0.0.1 right now, for a child process to bind (the one helper tests and
    bench/ share; ThreadServer keeps its socket bound instead, so nothing can take its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadServer:
    """``with ThreadServer(app) as server: server.url`` — a real HTTP server on a free local port.

    It runs its own event loop in a thread, so a slow fake endpoint never blocks the client under test.
    """

    def __init__(self, app: object) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)  # type: ignore[arg-type]
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake server did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(START_TIMEOUT_SECONDS)
        self._sock.close()
