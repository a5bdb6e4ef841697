"""A retried ask that reaches another process while the first is still answering: two real `serve`
processes on one PostgreSQL database, the model a slow fake on 127.0.0.1. The per-user lock of one
process cannot see the other's turn; the turn must still run once (one model call), and the retry gets
the first's stored reply (adapters/storage/turn_locks.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from adapters.storage.database import Database
from adapters.storage.turn_locks import TurnLocks
from tests import openai_fakes as fake
from tests.conftest import _truncate_all
from tests.crm_helpers import wait_for
from tests.fake_responses import responses_app
from tests.telegram.test_processes import START_TIMEOUT, child, healthy
from tests.thread_server import ThreadServer, free_port

pytestmark = pytest.mark.slow
TOKEN = "ask-processes-test-token-0123456789"
MODEL_SECONDS = 3.0  # the first turn is still waiting for the model when the retry comes


def answer(body: dict[str, Any], number: int) -> list[dict[str, Any]]:
    return [fake.answer(f"Здравствуйте! Ответ номер {number + 1}. Подскажите, пожалуйста, класс ребёнка.")]


def env(tmp_path: Path, database_url: str, model_url: str, name: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "DATABASE_URL": database_url,
        "PERSISTENT_DATA_PATH": str(tmp_path / name),
        "ASSISTANT_API_TOKEN": TOKEN,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": f"{model_url}/v1",
        "OPENAI_MAX_RETRIES": "0",
        "STARTUP_PREFLIGHT_MODE": "off",
        "ADMIN_PASS": "a-long-test-password",
    }


async def test_a_retry_in_another_process_waits_for_the_first_turn_and_gets_its_reply(
    tmp_path: Path, postgres_url: str
) -> None:
    model = responses_app(answer, delay=MODEL_SECONDS)
    ports = [free_port(), free_port()]
    body = {"message": "Здравствуйте, сыну 9 класс, нужна математика", "user_id": "crm-4242",
            "idempotency_key": "retry-across-processes-0001"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with ThreadServer(model) as server, child(
            "serve", env(tmp_path, postgres_url, server.url, "a"), tmp_path / "a.log", "--host", "127.0.0.1", "--port", str(ports[0])
        ), child(
            "serve", env(tmp_path, postgres_url, server.url, "b"), tmp_path / "b.log", "--host", "127.0.0.1", "--port", str(ports[1])
        ):
            async with httpx.AsyncClient(timeout=60) as client:
                await healthy(client, ports)

                def ask(port: int) -> Any:
                    return client.post(f"http://127.0.0.1:{port}/api/assistant/ask", json=body, headers=headers)

                first = asyncio.create_task(ask(ports[0]))
                # The first turn is in the model call; the client gave up on it and retries elsewhere.
                await wait_for(lambda: len(model.state.seen) == 1, timeout=START_TIMEOUT)
                retried = await asyncio.wait_for(ask(ports[1]), timeout=60)
                original = await asyncio.wait_for(first, timeout=60)
    finally:
        _truncate_all(postgres_url)
    assert original.status_code == retried.status_code == 200, retried.text
    assert len(model.state.seen) == 1  # one turn: the retry did not ask the model again
    assert retried.json() == original.json()
    assert "Ответ номер 1" in retried.json()["text"]


async def test_the_turn_lock_survives_a_dropped_connection(postgres_url: str) -> None:
    """The connection holding this process's turn locks is cut (a database restart, an idle timeout):
    the next turn takes its lock on a fresh connection instead of failing."""
    db = Database(postgres_url)
    locks = TurnLocks(db)
    try:
        async with locks.hold("telegram", "1", "kmipt"):
            pass
        assert locks._conn is not None
        pid = (await locks._conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        await _terminate(db, locks._conn)
        async with locks.hold("telegram", "1", "kmipt"):
            other = (await locks._conn.execute(text("SELECT pg_backend_pid()"))).scalar()  # type: ignore[union-attr]
        assert other != pid
    finally:
        await locks.close()
        await db.dispose()


async def _terminate(db: Database, conn: Any) -> None:
    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
    async with db.engine.connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_closing_after_the_kept_connection_dropped_does_not_raise(postgres_url: str) -> None:
    db = Database(postgres_url)
    locks = TurnLocks(db)
    try:
        async with locks.hold("telegram", "1", "kmipt"):
            pass
        await _terminate(db, locks._conn)
        await locks.close()  # it raised OperationalError, and shutdown never reached db.dispose()
        assert locks._conn is None
    finally:
        await db.dispose()


async def test_runtime_close_disposes_the_engine_even_if_a_close_before_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.wiring import build_runtime
    from tests.conftest import make_settings

    rt = build_runtime(make_settings(tmp_path))
    disposed: list[bool] = []

    async def broken() -> None:
        raise RuntimeError("stale connection")

    async def dispose() -> None:
        disposed.append(True)

    monkeypatch.setattr(rt.store.turn_locks, "close", broken)
    monkeypatch.setattr(rt.db, "dispose", dispose)
    with pytest.raises(RuntimeError):
        await rt.close()
    assert disposed == [True]


async def test_turns_in_flight_losing_their_lock_are_logged_once(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(postgres_url)
    locks = TurnLocks(db)
    try:
        async with locks.hold("telegram", "1", "kmipt"), locks.hold("telegram", "2", "kmipt"):
            await _terminate(db, locks._conn)
            with caplog.at_level("WARNING", logger="adapters.storage.turn_locks"):
                async with locks.hold("telegram", "3", "kmipt"):  # notices the drop, runs on a fresh one
                    pass
        lost = [r for r in caplog.records if "lost their cross-process lock" in r.getMessage()]
        assert len(lost) == 1 and "2 turn(s)" in lost[0].getMessage()
    finally:
        await locks.close()
        await db.dispose()


@pytest.fixture
async def db_and_locks(postgres_url: str) -> AsyncIterator[tuple[Database, TurnLocks]]:
    db = Database(postgres_url)
    locks = TurnLocks(db)
    yield db, locks
    await locks.close()
    await db.dispose()


async def _advisory_locks_held(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))).scalar_one())


async def test_many_turns_at_once_share_the_lock_statements(db_and_locks: tuple[Database, TurnLocks]) -> None:
    """Forty users' turns starting together take their locks in a few statements, not one round trip
    each; each lock is really held by the session while its turn runs, and all are let go after."""
    from sqlalchemy import event

    db, locks = db_and_locks
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    inside = asyncio.Event()

    async def turn(user: int) -> None:
        async with locks.hold("telegram", str(user), "kmipt"):
            await inside.wait()

    turns = [asyncio.create_task(turn(user)) for user in range(40)]
    await wait_for(lambda: locks._held == 40)
    assert await _advisory_locks_held(db) == 40
    inside.set()
    await asyncio.gather(*turns)
    await wait_for(lambda: not locks._queue)
    assert await _advisory_locks_held(db) == 0
    advisory = [s for s in statements if "advisory" in s]
    assert 2 <= len(advisory) <= 6, advisory  # a take and a release statement per batch


async def test_a_turn_cancelled_while_taking_its_lock_lets_the_lock_go(db_and_locks: tuple[Database, TurnLocks]) -> None:
    db, locks = db_and_locks

    async def turn() -> None:
        async with locks.hold("telegram", "9", "kmipt"):
            raise AssertionError("the cancelled turn never runs")

    task = asyncio.create_task(turn())
    await asyncio.sleep(0)  # its take is queued and being sent
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: not locks._queue and (locks._sender is None or locks._sender.done()))
    assert await _advisory_locks_held(db) == 0
    async with locks.hold("telegram", "9", "kmipt"):  # and the user's next turn gets it
        assert await _advisory_locks_held(db) == 1


async def test_a_turn_cancelled_right_after_its_lock_was_granted_lets_it_go(db_and_locks: tuple[Database, TurnLocks]) -> None:
    """The take's answer came (the lock is the session's) but the turn is cancelled before it runs on:
    the lock must not stay held by the shared session for other processes to wait on."""
    db, locks = db_and_locks
    answer = locks._answer

    def answered_then_cancelled(requests: Any, answers: Any) -> None:
        answer(requests, answers)
        task.cancel()  # the future is done with True; the task has not resumed yet

    locks._answer = answered_then_cancelled  # type: ignore[method-assign]
    task = asyncio.create_task(locks._ask(False, 4242))
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: not locks._queue and (locks._sender is None or locks._sender.done()))
    assert await _advisory_locks_held(db) == 0


async def test_closed_turn_locks_open_no_connection(db_and_locks: tuple[Database, TurnLocks]) -> None:
    _, locks = db_and_locks
    await locks.close()
    with pytest.raises(RuntimeError):
        async with locks.hold("telegram", "1", "kmipt"):
            pass
    assert locks._conn is None
