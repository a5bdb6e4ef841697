"""Driving replicas of tests/replica_worker.py from a test or a benchmark: their environment, starting
them so they all go at once, and the measure the limits are checked with."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120  # building a replica imports aiogram: seconds on a loaded 2-core machine


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of ``times`` inside any window of ``window`` seconds."""
    times = sorted(times)
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def replica_env(redis_url: str | None, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TELEGRAM_", "CRM_", "AMO_", "DATABASE_"))}
    env.update(PYTHONPATH=str(REPO), LOG_LEVEL="WARNING", **values)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@contextmanager
def replicas(args: list[list[str]], env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    """Start one process per argument list, wait until each is ready, then let them all go at once."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.replica_worker", *a], cwd=REPO, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for a in args
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        yield processes
        for process in processes:
            assert process.wait(START_TIMEOUT) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def flush_limits(redis_url: str) -> None:
    """Forget every shared limit's state (the service's keys start with sales_agent), so a run starts
    from empty windows whatever ran before on the same Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter("*sales_agent*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
