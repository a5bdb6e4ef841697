"""Real processes started like production (`python -m adapters.main serve|bot`, the real assistant in
offline mode): a worker killed with SIGKILL mid-update, and two webhook services on one PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from adapters.storage.database import Database
from tests.conftest import REPO
from tests.crm_helpers import wait_for
from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import SECRET, TOKEN

pytestmark = pytest.mark.slow
START_TIMEOUT = 60.0  # importing aiogram alone takes seconds on a busy 2-core machine


def _env(tmp_path: Path, api_url: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": api_url,
        "DATABASE_URL": database_url,
        "PERSISTENT_DATA_PATH": str(tmp_path / "data"),
        "TELEGRAM_QUEUE_POLL_SECONDS": "0.05",
        "TELEGRAM_QUEUE_RETRY_BASE_SECONDS": "0.1",
        "TELEGRAM_SEND_CHAT_PER_SECOND": "1000",
        "TELEGRAM_SEND_CHAT_BURST": "1000",
        "TELEGRAM_SEND_GLOBAL_PER_SECOND": "10000",
        "STARTUP_PREFLIGHT_MODE": "off",
        "ADMIN_PASS": "a-long-test-password",
    }
    env.update(extra)
    return env


@contextmanager
def child(role: str, env: dict[str, str], log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.main", role, *args], env=env, cwd=REPO, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    await db.migrate()
    try:
        yield db
    finally:
        await db.dispose()


async def scalar(db: Database, sql: str, **params: object) -> object:
    async with db.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


FUNNEL = ["grade:11", "goal:ege", "subject:math", "format:online"]
# The first message of each funnel reply, in order: a chat handled out of order would differ.
FUNNEL_REPLIES = ["Здравствуйте", "Какая цель", "Какой предмет", "Какой формат", "Вот программы"]


def funnel(first_update_id: int, chat: int) -> list[dict[str, object]]:
    steps: list[dict[str, object]] = [updates.message(first_update_id, chat, "/start")]
    steps += [updates.callback(first_update_id + n, chat, data) for n, data in enumerate(FUNNEL, start=1)]
    return steps


def first_replies(api: FakeBotAPI, chat: int) -> list[str]:
    """For each reply, the prefix it starts with (a reply of several messages counts once)."""
    seen: list[str] = []
    for message in api.sent_to(chat):
        prefix = next((p for p in FUNNEL_REPLIES if message["text"].startswith(p)), None)
        if prefix is not None:
            seen.append(prefix)
    return seen


async def test_worker_killed_mid_update_then_restarted(tmp_path: Path, fake_api: FakeBotAPI, database_url: str) -> None:
    """SIGKILL after the lead was stored but before the reply went out: the update is reclaimed
    after its lease, processed again, and neither the lead nor the message is stored twice."""
    user, others = 801, [802, 803]
    release = fake_api.hold(lambda params: "Заявка" in str(params.get("text")))
    script = [
        *funnel(1, user),
        updates.callback(6, user, "program:online-ege-math-11"),
        updates.callback(7, user, "consent:yes"),
        updates.contact(8, user, "+79991234567"),
        *funnel(20, others[0]),
        *funnel(40, others[1]),
    ]
    for update in script:
        fake_api.push_update(update)
    env = _env(tmp_path, fake_api.base_url, database_url, TELEGRAM_MODE="polling", TELEGRAM_QUEUE_LEASE_SECONDS="2")
    log = tmp_path / "bot.log"
    async with database(database_url) as db:
        with child("bot", env, log) as first:
            await wait_for(lambda: bool(fake_api.held), timeout=START_TIMEOUT)
            assert await scalar(db, "SELECT status FROM telegram_updates WHERE update_id = 8") == "processing"
            assert await scalar(db, "SELECT count(*) FROM leads") == 1
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        release.set()
        with child("bot", env, log):
            async def all_done() -> bool:
                return await scalar(db, "SELECT count(*) FROM telegram_updates WHERE status <> 'done'") == 0 and (
                    await scalar(db, "SELECT count(*) FROM telegram_updates") == len(script)
                )

            await wait_for(all_done, timeout=START_TIMEOUT)
        assert await scalar(db, "SELECT count(*) FROM leads") == 1
        assert await scalar(db, "SELECT attempts FROM telegram_updates WHERE update_id = 8") == 2
        stored = await scalar(db, "SELECT count(*) FROM messages WHERE role = 'user'")
        assert stored == len(script)  # every update's message once, the reprocessed one included
    assert any("Заявка" in m["text"] for m in fake_api.sent_to(user))
    for other in others:
        # A reply that went out just before the kill is sent again after the restart (sending is
        # at least once; storing is exactly once): compare without repeats, in order.
        assert list(dict.fromkeys(first_replies(fake_api, other))) == FUNNEL_REPLIES


async def healthy(client: httpx.AsyncClient, ports: list[int]) -> None:
    """Wait until every `serve` process on ``ports`` answers /api/health."""
    async def up(port: int) -> bool:
        try:
            return (await client.get(f"http://127.0.0.1:{port}/api/health")).status_code == 200
        except httpx.TransportError:
            return False

    for port in ports:
        await wait_for(lambda port=port: up(port), timeout=START_TIMEOUT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_two_webhook_services_share_one_postgresql(tmp_path: Path, fake_api: FakeBotAPI, postgres_url: str) -> None:
    """The scale-out deployment: updates reach either process; each is processed exactly once and
    every chat's replies come back in order."""
    chats = [901, 902, 903, 904, 905, 906]
    env = _env(tmp_path, fake_api.base_url, postgres_url, TELEGRAM_MODE="webhook", TELEGRAM_WEBHOOK_SECRET=SECRET)
    ports = [_free_port(), _free_port()]
    async with database(postgres_url) as db:
        with child("serve", env, tmp_path / "a.log", "--host", "127.0.0.1", "--port", str(ports[0])), child(
            "serve", env, tmp_path / "b.log", "--host", "127.0.0.1", "--port", str(ports[1])
        ):
            async with httpx.AsyncClient(timeout=10) as client:
                await healthy(client, ports)

                async def workers_started(log: str) -> bool:
                    return "starting telegram-workers" in (tmp_path / log).read_text()

                # Healthy comes before the workers (the SDKs load after start-up): a process whose workers
                # start late would leave all the work to the other, so both must be claiming first.
                for log in ("a.log", "b.log"):
                    await wait_for(lambda log=log: workers_started(log), timeout=START_TIMEOUT)

                async def send_chat(index: int, chat: int) -> None:
                    # Telegram sends one chat's updates one after another; chats go in parallel.
                    for n, update in enumerate(funnel(1000 + 100 * index, chat)):
                        response = await client.post(
                            f"http://127.0.0.1:{ports[(n + index) % 2]}/telegram/webhook",
                            json=update,
                            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                        )
                        assert response.json() == {"ok": True, "queued": True}

                await asyncio.gather(*(send_chat(i, chat) for i, chat in enumerate(chats)))
            total = len(chats) * len(FUNNEL_REPLIES)

            async def all_done() -> bool:
                return await scalar(db, "SELECT count(*) FROM telegram_updates WHERE status = 'done'") == total

            await wait_for(all_done, timeout=START_TIMEOUT)
            assert await scalar(db, "SELECT count(*) FROM telegram_updates WHERE attempts = 1") == total
    for chat in chats:
        assert first_replies(fake_api, chat) == FUNNEL_REPLIES  # each update once, in order
    # Both processes did part of the work (the claim is shared, not one process doing everything).
    logs = [(tmp_path / name).read_text() for name in ("a.log", "b.log")]
    assert all("is handled" in log for log in logs)


async def test_manager_message_survives_a_kill_between_receive_and_deliver(
    tmp_path: Path, fake_api: FakeBotAPI, database_url: str
) -> None:
    """The worker dies (SIGKILL) while copying a manager's message to the client: after the restart
    the message reaches the client exactly once and is stored once."""
    staff, client, manager = -1001234567890, 811, 9001
    fake_api.forums.add(staff)
    release = fake_api.hold(lambda params: int(params["chat_id"]) == client, method="copyMessage")
    fake_api.push_update(updates.message(1, client, "/start"))
    fake_api.push_update(updates.message(2, client, "/manager"))
    env = _env(
        tmp_path, fake_api.base_url, database_url, TELEGRAM_MODE="polling", TELEGRAM_QUEUE_LEASE_SECONDS="2",
        MANAGER_CHAT_ID=str(staff),
    )
    log = tmp_path / "bot.log"
    async with database(database_url) as db:
        with child("bot", env, log) as first:
            async def handed_off() -> bool:
                # By update id: the two-service test before this one leaves its rows in the database.
                return await scalar(db, "SELECT status FROM telegram_updates WHERE update_id = 2") == "done"

            await wait_for(handed_off, timeout=2 * START_TIMEOUT)  # a cold start, then two turns
            (thread,) = fake_api.topics
            fake_api.push_update(updates.staff(3, staff, manager, "Здравствуйте! Я менеджер Ирина.", thread=thread))
            await wait_for(lambda: bool(fake_api.held), timeout=START_TIMEOUT)
            assert await scalar(db, "SELECT status FROM telegram_updates WHERE update_id = 3") == "processing"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        await asyncio.sleep(0.5)  # the fake notices the dead connection
        release.set()
        with child("bot", env, log):
            async def done() -> bool:
                return await scalar(db, "SELECT status FROM telegram_updates WHERE update_id = 3") == "done"

            await wait_for(done, timeout=START_TIMEOUT)
        assert await scalar(db, "SELECT count(*) FROM messages WHERE role = 'manager'") == 1
        assert await scalar(db, "SELECT attempts FROM telegram_updates WHERE update_id = 3") == 2
    to_client = [c for c in fake_api.delivered("copyMessage") if int(c["chat_id"]) == client]
    assert len(to_client) == 1 and int(to_client[0]["message_id"]) == 10_003
    assert len(fake_api.aborted) == 1  # the copy the killed worker was waiting for never reached anyone
