"""Benchmark of the Telegram update queue. Prints, in one run:

1. webhook ingest requests/s as a ratio to a bare FastAPI endpoint returning {"ok": true}, both
   served by uvicorn on 127.0.0.1 in their own process and hit by the same client; the service's
   workers process what arrives meanwhile (every request is committed before it is answered);
2. queue processing updates/s with an instant agent and an instant fake Bot API;
3. 200 chats at once with a 1 s simulated agent, against the ideal of 1 s.

The fake Bot API runs in its own process. Telegram's real 30 messages/s cap is lifted here
(TELEGRAM_SEND_GLOBAL_PER_SECOND) because it would measure Telegram, not the queue.

    python bench/telegram_queue.py [--requests 5000] [--rounds 5] [--concurrency 32] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.thread_server import free_port  # noqa: E402

TOKEN = "123456789:AAF_bench-token-for-the-fake-bot-api-000"
SECRET = "bench-secret"
START_TIMEOUT = 90.0


class InstantAgent:
    """The Assistant protocol answering after ``delay`` seconds, without storage."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    async def handle(self, inbound: Any) -> Any:
        from agent.types import Reply

        if self.delay:
            await asyncio.sleep(self.delay)
        return Reply(text="Ответ")

    async def handoff(self, inbound: Any, reason: str) -> Any:
        return await self.handle(inbound)

    async def release(self, conversation_id: int) -> None:
        return None


def update(update_id: int, chat: int) -> dict[str, Any]:
    user = {"id": chat, "is_bot": False, "first_name": "Bench"}
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "date": 1700000000, "chat": {"id": chat, "type": "private"}, "from": user, "text": "Сколько стоит курс?"},
    }


def service_settings(data: Path, api_url: str, database_url: str | None) -> dict[str, str]:
    """The service's configuration, as environment variable names."""
    values = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": api_url,
        "TELEGRAM_MODE": "webhook",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_SEND_GLOBAL_PER_SECOND": "100000",
        "PERSISTENT_DATA_PATH": str(data),
        "STARTUP_PREFLIGHT_MODE": "off",
        "LOG_LEVEL": "WARNING",
    }
    if database_url:
        values["DATABASE_URL"] = database_url
    return values


@contextmanager
def spawn(args: list[str], env: dict[str, str] | None = None) -> Any:
    process = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


async def wait_http(session: aiohttp.ClientSession, url: str, method: str = "GET") -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            async with session.request(method, url) as response:
                await response.read()
                return
        except aiohttp.ClientError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def hammer(url: str, bodies: list[bytes], concurrency: int, headers: dict[str, str]) -> float:
    """POST every body with ``concurrency`` requests in flight; returns requests/s."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_http(session, url, "POST")
        pending = iter(bodies)
        failures = 0

        async def client() -> None:
            nonlocal failures
            for body in pending:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    failures += response.status != 200

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} requests failed")
    return len(bodies) / elapsed


async def queue_counts(database_url: str) -> dict[str, int]:
    from adapters.storage.database import Database
    from adapters.telegram.queue import UpdateQueue

    db = Database(database_url)
    try:
        return (await UpdateQueue(db).stats())["counts"]
    finally:
        await db.dispose()


async def wait_drained(database_url: str) -> None:
    while True:
        counts = await queue_counts(database_url)
        if counts["queued"] + counts["retry"] + counts["processing"] == 0:
            return
        await asyncio.sleep(0.1)


async def measure_ingest(
    api_url: str, data: Path, database_url: str | None, requests: int, concurrency: int, rounds: int
) -> dict[str, float]:
    """Bare and webhook rounds alternate so both see the same machine load (other processes come
    and go); each webhook round starts with an empty queue, and its workers process what arrives."""
    headers = {"content-type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    per_round = requests // rounds
    bare_port, service_port = free_port(), free_port()
    queue_url = database_url or f"sqlite+aiosqlite:///{data / 'sales_agent.db'}"
    bare_url, service_url = f"http://127.0.0.1:{bare_port}/hook", f"http://127.0.0.1:{service_port}/telegram/webhook"
    env = {**os.environ, **service_settings(data, api_url, database_url)}
    ratios, bare_rates, service_rates = [], [], []
    with spawn([__file__, "--role", "bare", "--port", str(bare_port)]), spawn(
        [__file__, "--role", "service", "--port", str(service_port)], env
    ):
        next_id = 1
        for number in range(rounds + 1):  # round 0 warms both up
            bodies = [json.dumps(update(n, 10_000 + n % 500)).encode() for n in range(next_id, next_id + per_round)]
            next_id += per_round
            await wait_drained(queue_url) if number else None
            bare = await hammer(bare_url, bodies, concurrency, headers)
            service = await hammer(service_url, bodies, concurrency, headers)
            if number:
                bare_rates.append(bare)
                service_rates.append(service)
                ratios.append(service / bare)
        await wait_drained(queue_url)
        counts = await queue_counts(queue_url)
    return {
        "bare": statistics.median(bare_rates),
        "service": statistics.median(service_rates),
        "ratio": statistics.median(ratios),
        "done": float(counts["done"]),
        "sent": float(next_id - 1),
    }


async def run_workers(api_url: str, data: Path, database_url: str | None, batch: list[dict[str, Any]], delay: float) -> float:
    """Queue ``batch``, start the workers, return seconds until every update is done."""
    from adapters.wiring import build_runtime
    from agent.settings import Settings

    values = {name.lower(): value for name, value in service_settings(data, api_url, database_url).items()}
    runtime = build_runtime(Settings(_env_file=None, **values), assistant=InstantAgent(delay))  # type: ignore[arg-type]
    telegram = runtime.telegram
    assert telegram is not None
    await runtime.db.migrate()
    await telegram.queue.enqueue_many(batch)
    task = asyncio.create_task(telegram.workers.run())
    started = time.perf_counter()
    try:
        while telegram.workers.processed < len(batch):
            await asyncio.sleep(0.005)
        return time.perf_counter() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runtime.close()


async def measure_processing(api_url: str, root: Path, database_url: str | None, updates: int) -> float:
    batch = [update(n, 30_000 + n % 400) for n in range(1, updates + 1)]
    seconds = await run_workers(api_url, root / "processing", database_url, batch, 0.0)
    return updates / seconds


async def measure_chats(api_url: str, root: Path, database_url: str | None, chats: int, delay: float) -> float:
    batch = [update(n, 40_000 + n) for n in range(1, chats + 1)]
    return await run_workers(api_url, root / "chats", database_url, batch, delay)


async def main(args: argparse.Namespace) -> None:
    api_port = free_port()
    with spawn(["-m", "tests.fakes.telegram_api", "--port", str(api_port)]), tempfile.TemporaryDirectory() as tmp:
        api_url = f"http://127.0.0.1:{api_port}"
        root = Path(tmp)
        if args.database_url:
            from tests.conftest import _truncate_all  # a fresh queue per scenario on a shared server

            _truncate_all(args.database_url)
        ingest = await measure_ingest(
            api_url, root / "ingest", args.database_url, args.requests, args.concurrency, args.rounds
        )
        backend = "postgresql" if args.database_url else "sqlite"
        print(
            f"webhook ingest ({backend}, {args.rounds} alternating rounds of {args.requests // args.rounds} requests, "
            f"{args.concurrency} in flight, workers processing):"
        )
        print(
            f"  bare FastAPI {ingest['bare']:.0f} req/s, webhook {ingest['service']:.0f} req/s (medians), "
            f"ratio {ingest['ratio']:.2f}x (median of rounds; target >= 0.5x); "
            f"{ingest['done']:.0f} of {ingest['sent']:.0f} updates processed"
        )
        if args.database_url:
            _truncate_all(args.database_url)
        rate = await measure_processing(api_url, root, args.database_url, args.updates)
        print(f"queue processing ({backend}, {args.updates} updates, instant agent): {rate:.0f} updates/s (target >= 300)")
        if args.database_url:
            _truncate_all(args.database_url)
        seconds = await measure_chats(api_url, root, args.database_url, args.chats, 1.0)
        print(f"{args.chats} chats at once, 1 s agent: {seconds:.2f} s (ideal 1.00 s, target <= 3.00 s)")


def serve(role: str, port: int) -> None:
    import uvicorn

    if role == "bare":
        from fastapi import FastAPI

        app = FastAPI()

        @app.post("/hook")
        async def hook() -> dict[str, bool]:
            return {"ok": True}
    else:
        from adapters.http.app import create_app
        from adapters.wiring import build_runtime
        from agent.settings import load_settings

        settings = load_settings()
        runtime = build_runtime(settings, assistant=InstantAgent())  # type: ignore[arg-type]
        app = create_app(settings, runtime=runtime)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of a fresh SQLite file")
    parser.add_argument("--role", choices=["bare", "service"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.role:
        serve(parsed.role, parsed.port)
    else:
        asyncio.run(main(parsed))
