#!/usr/bin/env python3
"""N webhook processes on one PostgreSQL and one Redis behave as one bot (issue 18).

    python bench/scale_webhooks.py [--updates 5000] [--chats 500] [--processes 3] [--timeout 900]

Starts ``--processes`` real services (`python -m adapters.main serve`, webhook mode, the real assistant
in offline mode, the default Telegram send limits: 30 messages/s in total, 1/s per chat with a burst
of 3, shared through Redis) on one fresh PostgreSQL database, with a fake Bot API in a process of its own.
Posts ``--updates`` text messages across ``--chats`` chats (each chat's updates in order, one after
another, as Telegram does; chats in parallel), round-robin over the processes' webhooks. When half
have been posted, one process is killed with SIGKILL and started again on the same port (posts meant
for it while it is down are retried, as Telegram retries a failed delivery).

Checks, printed with the figures:
- exactly once: every update is stored once and marked done, and every chat's user messages are
  stored once each, in update order (the database);
- the fake Bot API never received more than the global limit in any second, nor more than the
  per-chat burst in any second from one chat.

Needs PostgreSQL and Redis on 127.0.0.1 (TEST_PG_DSN as the tests use it; SCALE_REDIS_URL, below).
tests/test_scale_webhooks.py runs it small (600 updates, 60 chats).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402

from tests.pg_database import fresh_database  # noqa: E402
from tests.replicas import flush_limits, most_in_any_window  # noqa: E402
from tests.thread_server import free_port  # noqa: E402

# A Redis database of its own (SCALE_REDIS_URL to change it): the service's keys (token totals per user id,
# send budgets) must not meet those of tests or other benchmarks running beside it on the same Redis,
# and the run clears its limits first.
REDIS_URL = os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379/12")
TOKEN = "123456789:AAF_scale-bench-token-for-the-fake-api"
SECRET = "scale-bench-webhook-secret"
GLOBAL_PER_SECOND = 30
CHAT_BURST = 3
FIRST_CHAT = 880_000


@dataclass
class Outcome:
    updates: int
    chats: int
    processes: int
    seconds: float
    done: int
    stored_once: bool
    chats_in_order: int
    messages_sent: int
    max_per_second: int
    max_chat_per_second: int
    reposted: int
    posted_seconds: float = 0.0  # when the last post was accepted (from the first post)
    late_moments: int = 0  # global moments given up: the sender woke late into a full second (SharedSpacing)
    sends_per_10s: tuple[int, ...] = ()  # Bot API arrivals in each 10 s from the first post

    @property
    def ok(self) -> bool:
        return (
            self.done == self.updates and self.stored_once and self.chats_in_order == self.chats
            and self.max_per_second <= GLOBAL_PER_SECOND and self.max_chat_per_second <= CHAT_BURST
        )

    def report(self) -> str:
        return "\n".join([
            f"{self.updates} updates across {self.chats} chats, {self.processes} webhook processes, one killed -9 "
            f"and restarted mid-way: {self.done} done after {self.seconds:.1f} s "
            f"[target: all within the timeout: {'met' if self.done == self.updates else 'MISSED'}]",
            f"  updates done: {self.done}/{self.updates}; each user message stored exactly once: {self.stored_once}; "
            f"chats in update order: {self.chats_in_order}/{self.chats}",
            f"  all posted after {self.posted_seconds:.1f} s; posts retried while the killed process was down: {self.reposted}",
            f"  Bot API arrivals per 10 s: {' '.join(map(str, self.sends_per_10s))}; "
            f"moments given up (woken late into a full second): {self.late_moments}",
            f"  Bot API: {self.messages_sent} messages; most in any 1 s: {self.max_per_second} (limit {GLOBAL_PER_SECOND}); "
            f"most to one chat in any 1 s: {self.max_chat_per_second} (burst {CHAT_BURST})",
            f"  guarantees (exactly once, in order, <= {GLOBAL_PER_SECOND}/s, <= {CHAT_BURST}/s per chat): "
            f"{'all held: met' if self.ok else 'BROKEN: MISSED'}",
        ])


def per_bucket(offsets: list[float], width: float) -> tuple[int, ...]:
    counts: dict[int, int] = {}
    for offset in offsets:
        counts[int(offset // width)] = counts.get(int(offset // width), 0) + 1
    return tuple(counts.get(n, 0) for n in range(max(counts, default=-1) + 1))


class Service:
    """One `serve` process on a fixed port (a restart comes back on the same one)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "adapters.main", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, cwd=ROOT, stdout=out, stderr=out,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def wait_healthy(client: aiohttp.ClientSession, services: list[Service], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for service in services:
        while True:
            try:
                async with client.get(f"{service.url}/api/health") as response:
                    if response.status == 200:
                        break
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service.url} did not answer /api/health in {timeout:g} s")
            await asyncio.sleep(0.1)


async def wait_for_bots(client: aiohttp.ClientSession, fake: FakeBotAPIProcess, processes: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await fake.count(client, "getMe") < processes:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every process's bot started in {timeout:g} s")
        await asyncio.sleep(0.1)


def message(update_id: int, chat: int) -> dict[str, object]:
    user = {"id": chat, "is_bot": False, "first_name": "Bench"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": int(time.time()), "chat": {"id": chat, "type": "private"},
            "from": user, "text": f"Вопрос {update_id}: расскажите о курсах",
        },
    }


def late_count() -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.get("sales_agent:spacing:tg_send_all:late") or 0)
    finally:
        client.close()


def done_count(url: str) -> int:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return int(conn.execute("SELECT count(*) FROM telegram_updates WHERE status = 'done'").fetchone()[0])


def database_counts(url: str, chats: list[int]) -> tuple[int, bool, int]:
    """(updates done, every user message stored once, chats whose user messages are in update order)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        done = conn.execute("SELECT count(*) FROM telegram_updates WHERE status = 'done'").fetchone()[0]
        rows = conn.execute(
            "SELECT u.external_id, m.content FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "JOIN users u ON u.id = c.user_id WHERE m.role = 'user' ORDER BY m.id"
        ).fetchall()
    by_chat: dict[str, list[int]] = {}
    for external_id, content in rows:
        by_chat.setdefault(str(external_id), []).append(int(str(content).split()[1].rstrip(":")))
    numbers = [n for values in by_chat.values() for n in values]
    stored_once = len(numbers) == len(set(numbers))
    in_order = sum(1 for chat in chats if by_chat.get(str(chat)) == sorted(by_chat.get(str(chat), [])) and by_chat.get(str(chat)))
    return done, stored_once, in_order


class FakeBotAPIProcess:
    """The fake Bot API in a process of its own (python -m tests.fakes.telegram_api --record-to): in
    this one, its arrival stamps waited for the GIL behind the posting and the database checks and
    bunched up (more "in one second" than the senders let go). Stamps are time.monotonic(), the same
    clock in every process on the host."""

    def __init__(self, workdir: Path) -> None:
        self.record = workdir / "bot-api-calls.jsonl"
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.telegram_api", "--record-to", str(self.record)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the fake Bot API did not start")
        return self.url

    async def count(self, client: aiohttp.ClientSession, method: str) -> int:
        async with client.get(f"{self.url}/_count/{method}") as response:
            return int(await response.json())

    def stop(self) -> list[dict[str, Any]]:
        """Stop it and return the calls it recorded."""
        if self.process is None:
            return []
        self.process.terminate()
        self.process.wait(30)
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text(encoding="utf-8").splitlines()]


async def run(updates: int, chats: int, processes: int = 3, *, timeout: float = 900.0, workdir: Path) -> Outcome:
    flush_limits(REDIS_URL)
    fake = FakeBotAPIProcess(workdir)
    api_url = fake.start()
    calls: list[dict[str, Any]] = []
    chat_ids = [FIRST_CHAT + n for n in range(chats)]
    per_chat = updates // chats
    reposted = 0
    try:
        with fresh_database("scale") as database_url:
            env = {
                # LANG as the image sets it (python:3.11-slim): under the C locale turns took twice as long.
                "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT), "HOME": str(workdir),
                "PERSISTENT_DATA_PATH": str(workdir / "data"), "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
                "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": api_url, "TELEGRAM_MODE": "webhook",
                "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_QUEUE_LEASE_SECONDS": "5",
                "STARTUP_PREFLIGHT_MODE": "off", "ADMIN_PASS": "a-long-bench-password", "LOG_LEVEL": "WARNING",
            }
            services = [Service(env, workdir / f"serve-{n}.log") for n in range(processes)]
            try:
                for service in services:
                    service.start()
                # aiohttp, one connection per poster: httpx's pool (100 connections) queued the other
                # 400 chats' posts and spent the load generator's CPU assigning them (quadratic in the
                # queue): the full size stalled in the poster, not in the service.
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:
                    await wait_healthy(client, services, timeout)
                    # Healthy comes before the queue workers (the SDKs load after start-up); every
                    # process's bot asks getMe as its workers start: wait for all, so the clock
                    # measures processing, not aiogram's import.
                    await wait_for_bots(client, fake, processes, timeout)
                    started = time.monotonic()
                    posted = 0
                    victim = services[-1]
                    killed = asyncio.Event()

                    async def post(update: dict[str, object], index: int) -> None:
                        nonlocal reposted
                        attempt = 0
                        while True:
                            service = services[(index + attempt) % processes]
                            try:
                                async with client.post(
                                    f"{service.url}/telegram/webhook", json=update,
                                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                                ) as response:
                                    if response.status == 200:
                                        return
                            except (aiohttp.ClientError, TimeoutError):
                                pass
                            # Telegram retries a failed delivery; here the next process takes it.
                            reposted += 1
                            attempt += 1
                            await asyncio.sleep(0.05)

                    async def send_chat(position: int, chat: int) -> None:
                        nonlocal posted
                        for turn in range(per_chat):
                            update_id = 1 + turn * chats + position  # round-robin over the chats
                            await post(message(update_id, chat), update_id)
                            posted += 1
                            if posted >= updates // 2 and not killed.is_set():
                                killed.set()
                                victim.kill()
                                victim.start()

                    await asyncio.gather(*(send_chat(p, chat) for p, chat in enumerate(chat_ids)))
                    posted_seconds = time.monotonic() - started
                    total = per_chat * chats
                    deadline = started + timeout
                    while done_count(database_url) < total and time.monotonic() < deadline:
                        await asyncio.sleep(0.5)
                    seconds = time.monotonic() - started
                    done, stored_once, in_order = database_counts(database_url, chat_ids)
                    late_moments = late_count()
            finally:
                for service in services:
                    service.stop()
    finally:
        calls = fake.stop()
    sent = [call for call in calls if call["method"] == "sendMessage"]
    by_chat: dict[int, list[float]] = {}
    for call in sent:
        by_chat.setdefault(int(call["chat_id"]), []).append(call["at"])
    return Outcome(
        updates=per_chat * chats, chats=chats, processes=processes, seconds=seconds, done=done,
        stored_once=stored_once, chats_in_order=in_order, messages_sent=len(sent),
        max_per_second=most_in_any_window([c["at"] for c in sent]),
        max_chat_per_second=max((most_in_any_window(times) for times in by_chat.values()), default=0),
        reposted=reposted, posted_seconds=posted_seconds, late_moments=late_moments, sends_per_10s=per_bucket([c["at"] - started for c in sent], 10.0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    import tempfile

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        outcome = asyncio.run(run(args.updates, args.chats, args.processes, timeout=args.timeout, workdir=Path(tmp)))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(outcome.report())
    sys.exit(0 if outcome.ok else 1)


if __name__ == "__main__":
    main()
