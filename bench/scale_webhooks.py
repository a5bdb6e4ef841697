#!/usr/bin/env python3
"""N webhook processes on one PostgreSQL and one Redis behave as one bot (issue 18).

    python bench/scale_webhooks.py [--updates 5000] [--chats 500] [--processes 3] [--timeout 900]

Starts ``--processes`` real services (`python -m adapters.main serve`, webhook mode, the real assistant
in offline mode, the default Telegram send limits: 30 messages/s in total, 1/s per chat with a burst
of 3, shared through Redis) on one fresh PostgreSQL database, with a fake Bot API in this process.
Posts ``--updates`` text messages across ``--chats`` chats (each chat's updates in order, one after
another, as Telegram does; chats in parallel), round-robin over the processes' webhooks. When half
have been posted, one process is killed with SIGKILL and started again on the same port (posts meant
for it while it is down are retried, as Telegram retries a failed delivery).

Checks, printed with the figures:
- exactly once: every update is stored once and marked done, and every chat's user messages are
  stored once each, in update order (the database);
- the fake Bot API never received more than the global limit in any second, nor more than the
  per-chat burst in any second from one chat.

Needs PostgreSQL and Redis on 127.0.0.1 (TEST_PG_DSN / REDIS_URL, as the tests use them).
tests/test_scale_webhooks.py runs it small (600 updates, 60 chats).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from tests.fakes.telegram_api import FakeBotAPI  # noqa: E402

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")  # as tests/conftest.py
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
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

    @property
    def ok(self) -> bool:
        return (
            self.done == self.updates and self.stored_once and self.chats_in_order == self.chats
            and self.max_per_second <= GLOBAL_PER_SECOND and self.max_chat_per_second <= CHAT_BURST
        )

    def report(self) -> str:
        return "\n".join([
            f"{self.updates} updates across {self.chats} chats, {self.processes} webhook processes, one killed -9 "
            f"and restarted mid-way: all processed in {self.seconds:.1f} s",
            f"  updates done: {self.done}/{self.updates}; each user message stored exactly once: {self.stored_once}; "
            f"chats in update order: {self.chats_in_order}/{self.chats}",
            f"  posts retried while the killed process was down: {self.reposted}",
            f"  Bot API: {self.messages_sent} messages; most in any 1 s: {self.max_per_second} (limit {GLOBAL_PER_SECOND}); "
            f"most to one chat in any 1 s: {self.max_chat_per_second} (burst {CHAT_BURST})",
            f"  guarantees: {'all held' if self.ok else 'BROKEN'}",
        ])


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis_limits() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter("*sales_agent*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


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


async def wait_healthy(client: httpx.AsyncClient, services: list[Service], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for service in services:
        while True:
            try:
                if (await client.get(f"{service.url}/api/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service.url} did not answer /api/health in {timeout:g} s")
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


class FakeBotAPIThread:
    """The fake Bot API on an event loop of its own: on the posting loop its arrival stamps would
    wait behind the posts and bunch up (more "in one second" than the senders let go)."""

    def __init__(self) -> None:
        self.fake = FakeBotAPI()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-bot-api", daemon=True)

    def start(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def run(updates: int, chats: int, processes: int = 3, *, timeout: float = 900.0, workdir: Path) -> Outcome:
    flush_redis_limits()
    server = FakeBotAPIThread()
    fake = server.fake
    api_url = server.start()
    chat_ids = [FIRST_CHAT + n for n in range(chats)]
    per_chat = updates // chats
    reposted = 0
    try:
        with fresh_database() as database_url:
            env = {
                "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": str(workdir),
                "PERSISTENT_DATA_PATH": str(workdir / "data"), "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
                "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": api_url, "TELEGRAM_MODE": "webhook",
                "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_QUEUE_LEASE_SECONDS": "5",
                "STARTUP_PREFLIGHT_MODE": "off", "ADMIN_PASS": "a-long-bench-password", "LOG_LEVEL": "WARNING",
            }
            services = [Service(env, workdir / f"serve-{n}.log") for n in range(processes)]
            try:
                for service in services:
                    service.start()
                async with httpx.AsyncClient(timeout=30) as client:
                    await wait_healthy(client, services, timeout)
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
                                response = await client.post(
                                    f"{service.url}/telegram/webhook", json=update,
                                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                                )
                                if response.status_code == 200:
                                    return
                            except httpx.TransportError:
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
                    total = per_chat * chats
                    deadline = started + timeout
                    while True:
                        done, stored_once, in_order = database_counts(database_url, chat_ids)
                        if done >= total or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.5)
                    seconds = time.monotonic() - started
            finally:
                for service in services:
                    service.stop()
    finally:
        server.stop()
    sent = fake.calls_of("sendMessage")
    by_chat: dict[int, list[float]] = {}
    for call in sent:
        by_chat.setdefault(int(call.params["chat_id"]), []).append(call.at)
    return Outcome(
        updates=per_chat * chats, chats=chats, processes=processes, seconds=seconds, done=done,
        stored_once=stored_once, chats_in_order=in_order, messages_sent=len(sent),
        max_per_second=most_in_any_window([c.at for c in sent]),
        max_chat_per_second=max((most_in_any_window(times) for times in by_chat.values()), default=0),
        reposted=reposted,
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
