"""A real service process on 127.0.0.1 for tests that exercise scripts over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.thread_server import free_port


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        """Until the server's log holds ``text`` (e.g. a warm-up after health has finished)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"«{text}» not in the server's log within {timeout:g} s:\n{self.log()[-2000:]}")
            time.sleep(0.1)


@contextmanager
def live_server(tmp_path: Path, **env: str) -> Iterator[LiveServer]:
    port = free_port()
    dist = tmp_path / "dist"
    dist.mkdir(exist_ok=True)
    (dist / "index.html").write_text("<!doctype html><title>app</title>")
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PERSISTENT_DATA_PATH": str(tmp_path / "data"),
        "ADMIN_PASS": "a-long-test-password",
        "WEBAPP_DIST_PATH": str(dist),
        "LOG_LEVEL": "INFO",
        **env,
    }
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, text=True,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            try:
                if httpx.get(f"{server.base_url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server did not answer within 30 s:\n{server.log()}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
