"""What the benchmarks that start servers in processes of their own share (bench/http_hot_paths.py,
bench/telegram_queue.py): a free port, a child process that is stopped however the run ends, the fake
Bot API's token and the webhook secret."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tests.thread_server import free_port  # the one helper tests and bench/ share

REPO = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAF_bench-token-for-the-fake-bot-api-000"
SECRET = "bench-secret"
STOP_SECONDS = 30


@contextmanager
def spawn(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path = REPO, stderr: int | IO[bytes] | None = subprocess.DEVNULL
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running until the block ends: then SIGTERM (a graceful stop), SIGKILL after 30 s."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
