"""A turn's storage (adapters/storage/stores.py + turn_sql.py) on SQLite and PostgreSQL: two short
transactions, idempotent on the update's key, and the daily token totals kept without a SUM per turn."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import respx
from sqlalchemy import event, func, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from adapters.storage.models import Conversation, Message, ModelUsage, User
from adapters.storage.token_totals import TokenTotals
from adapters.runtime import Runtime
from adapters.wiring import build_runtime
from agent.state import NewMessage, UsageRecord
from agent.types import Usage
from tests import openai_fakes as fake
from tests.assistant_helpers import Chat, quick_llm
from tests.conftest import _truncate_all, make_settings


def _question(key: str | None = "tg:1", text: str = "Здравствуйте") -> NewMessage:
    return NewMessage(content=text, channel="telegram", idempotency_key=key)


async def _count(rt: Runtime, model: Any) -> int:
    async with rt.db.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_open_turn_creates_user_and_conversation_and_stores_the_message(runtime: Runtime) -> None:
    opened = await runtime.store.open_turn("telegram", "501", "kmipt", _question(), first_name="Анна", source="ads_vk")
    assert opened.stored_reply is None and opened.state is not None
    state = opened.state
    assert (state.brand, state.first_name, state.source) == ("kmipt", "Анна", "ads_vk")
    again = await runtime.store.load("telegram", "501", "kmipt", first_name="Аня", source="other")
    assert (again.user_id, again.conversation_id) == (state.user_id, state.conversation_id)
    assert (again.first_name, again.source) == ("Аня", "ads_vk")  # the first-touch source is never overwritten
    other_brand = await runtime.store.load("telegram", "501", "demo")
    assert other_brand.user_id == state.user_id and other_brand.conversation_id != state.conversation_id
    stored = await runtime.store.recent_messages(state.conversation_id, limit=10)
    assert [(m.role, m.content) for m in stored] == [("user", "Здравствуйте")]
    conversation = await runtime.conversations.get(state.conversation_id)
    assert conversation is not None and conversation.last_message_at is not None


async def test_finish_turn_stores_reply_state_and_usage_and_a_redelivery_gets_the_reply(runtime: Runtime) -> None:
    opened = await runtime.store.open_turn("telegram", "502", "kmipt", _question())
    state = opened.state
    assert state is not None
    state.profile.grade = 11
    state.flow["step"] = "goal"
    usage = [
        UsageRecord(conversation_id=state.conversation_id, user_id=state.user_id, model="gpt-4.1", purpose="turn",
                    usage=Usage(model_calls=1, input_tokens=100, output_tokens=20, total_tokens=120)),
        UsageRecord(conversation_id=state.conversation_id, user_id=state.user_id, model="gpt-4.1", purpose="web_fallback",
                    usage=Usage(model_calls=1, total_tokens=30)),
    ]
    reply = NewMessage(content="Ответ", channel="telegram", meta={"reply": {"text": "Ответ"}}, idempotency_key="tg:1")
    await runtime.store.finish_turn(state, reply, usage)

    redelivered = await runtime.store.open_turn("telegram", "502", "kmipt", _question())
    assert redelivered.state is None and redelivered.stored_reply == {"text": "Ответ"}
    await runtime.store.finish_turn(state, reply, [])  # a second finish with the same key stores no second reply
    assert await _count(runtime, Message) == 2
    assert sorted(row.purpose for row in (await _rows(runtime, ModelUsage))) == ["turn", "web_fallback"]
    loaded = await runtime.store.load_by_id(state.conversation_id)
    assert loaded is not None and loaded.profile.grade == 11 and loaded.flow == {"step": "goal"}
    day = datetime.now(UTC) - timedelta(hours=1)
    assert await runtime.store.tokens.since(day, user_id=state.user_id) == 150


async def test_a_half_done_turn_is_redone_without_a_second_user_message(runtime: Runtime) -> None:
    """The process died after storing the user's message: the redelivery runs the turn, storing it once."""
    first = await runtime.store.open_turn("api", "client", "kmipt", _question("api:1"))
    second = await runtime.store.open_turn("api", "client", "kmipt", _question("api:1"))
    assert second.state is not None and first.state is not None
    assert second.state.conversation_id == first.state.conversation_id
    assert await _count(runtime, Message) == 1 and await _count(runtime, User) == 1
    assert await _count(runtime, Conversation) == 1


async def test_a_first_contact_is_created_without_reading_its_rows_back(runtime: Runtime) -> None:
    """A new user's turn opens with the lookup and the inserts only: the new ids come back from the
    inserts, the transcript is the message just stored, and the user has no consent yet."""
    statements: list[str] = []

    def seen(conn: object, cursor: object, sql: str, *args: object) -> None:
        statements.append(" ".join(sql.split()[:3]).upper())

    for engine in runtime.db.sync_engines:
        event.listen(engine, "before_cursor_execute", seen)
    opened = await runtime.store.open_turn("telegram", "601", "kmipt", _question("tg:601"), first_name="Анна",
                                           context_messages=10)
    assert statements == ["SELECT USERS.ID, USERS.IDENTITY,", "INSERT INTO USERS", "INSERT INTO CONVERSATIONS",
                          "INSERT INTO MESSAGES", "UPDATE CONVERSATIONS SET"]
    state = opened.state
    assert state is not None and state.first_name == "Анна" and state.flow == {} and not state.handoff_notice_sent
    assert [(m.role, m.content) for m in state.preloaded_transcript or []] == [("user", "Здравствуйте")]
    assert state.preloaded_consent is False
    stored = await runtime.store.load_by_id(state.conversation_id)
    assert stored is not None and (stored.user_id, stored.first_name) == (state.user_id, "Анна")


@pytest.mark.parametrize("loses", ["user", "conversation"])
async def test_a_first_message_that_loses_the_insert_reads_the_winners_row(
    tmp_path: Path, postgres_url: str, loses: str
) -> None:
    """Another process stores the same new user (or the user's conversation with the brand) between this
    turn's lookup and its insert: the insert is skipped and the turn continues on the winner's row.
    PostgreSQL only: on SQLite, with one writer, a turn that lost the race is redone whole (Database.run)."""
    runtime = build_runtime(make_settings(tmp_path, database_url=postgres_url))
    await runtime.db.migrate()
    try:
        await _lose_the_first_insert(runtime, postgres_url, loses)
    finally:
        await runtime.close()
        _truncate_all(postgres_url)


async def _lose_the_first_insert(runtime: Runtime, database_url: str, loses: str) -> None:
    import psycopg

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as other:
        user_id = None
        if loses == "conversation":  # the user is stored already, without a conversation with this brand
            user_id = other.execute("INSERT INTO users (identity, external_id, created_at) "
                                    "VALUES ('telegram', '602', now()) RETURNING id").fetchone()[0]
        won: dict[str, int] = {}

        def concurrent_insert(conn: object, cursor: object, sql: str, *args: object) -> None:
            if won or not sql.startswith(f"INSERT INTO {loses}s"):
                return
            nonlocal user_id
            if loses == "user":
                user_id = other.execute("INSERT INTO users (identity, external_id, created_at) "
                                        "VALUES ('telegram', '602', now()) RETURNING id").fetchone()[0]
            won["user"] = user_id
            won["conversation"] = other.execute(
                "INSERT INTO conversations (user_id, brand, profile, state, handoff_notice_sent, created_at, updated_at) "
                "VALUES (%s, 'kmipt', '{}', '{\"step\": \"goal\"}', false, now(), now()) RETURNING id", (user_id,)
            ).fetchone()[0] if loses == "conversation" else 0

        event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", concurrent_insert)
        opened = await runtime.store.open_turn("telegram", "602", "kmipt", _question("tg:602"), context_messages=10)
    state = opened.state
    assert state is not None and won and state.user_id == won["user"]
    if loses == "conversation":
        assert state.conversation_id == won["conversation"] and state.flow == {"step": "goal"}
    assert [(m.role, m.content) for m in state.preloaded_transcript or []] == [("user", "Здравствуйте")]
    assert await _count(runtime, User) == 1 and await _count(runtime, Conversation) == 1
    assert await _count(runtime, Message) == 1


async def _rows(rt: Runtime, model: Any) -> list[Any]:
    async with rt.db.session() as session:
        return list((await session.exec(select(model))).all())


@pytest.fixture
async def model_runtime(tmp_path: Path, database_url: str) -> AsyncIterator[Runtime]:
    settings = make_settings(tmp_path, database_url=database_url, openai_api_key="sk-test")
    rt = build_runtime(settings, llm=quick_llm(settings))
    await rt.db.migrate()
    yield rt
    await rt.close()


async def test_a_model_turn_makes_few_database_round_trips(model_runtime: Runtime) -> None:
    """A tool round and an answer: the turn's reads and writes stay a handful of statements (they were ~20)
    in two transactions (the transcript and the consent are read when the turn opens)."""
    statements: list[str] = []
    locks: list[str] = []  # PostgreSQL: the user's cross-process turn lock, taken and released (turn_locks.py)
    transactions: list[object] = []

    def seen(conn: object, cursor: object, sql: str, *args: object) -> None:
        (locks if "advisory" in sql else statements).append(sql.split()[0].upper())

    for engine in model_runtime.db.sync_engines:
        event.listen(engine, "before_cursor_execute", seen)
        event.listen(engine, "begin", transactions.append)
    chat = Chat(model_runtime)
    with respx.mock(base_url=fake.BASE_URL) as api:
        api.post("/responses").mock(side_effect=[fake.response(fake.answer("Здравствуйте!"))] + [
            fake.response(fake.function_call("kb_file_search", {"query": "оплата"})),
            fake.response(fake.answer("Оплатить можно картой.")),
        ])
        await chat.send(text="привет")  # the first turn also creates the user and reads today's budgets
        statements.clear()
        locks.clear()
        transactions.clear()
        reply = await chat.send(text="Как оплатить?")
    assert reply.engine == "model" and reply.usage.model_calls == 2
    # open: find (with the consent) + user message + last_message_at + transcript; finish: reply + state + usage rows
    assert len([s for s in statements if s in {"SELECT", "INSERT", "UPDATE", "DELETE"}]) == 7, statements
    assert len(transactions) == 2
    assert len(locks) == (0 if model_runtime.db.is_sqlite else 2)
    assert len(await _rows(model_runtime, ModelUsage)) == 3


async def test_token_totals_count_own_writes_and_refresh_from_the_database() -> None:
    spent = {None: 100, 7: 40}
    queries: list[int | None] = []
    clock = [0.0]

    async def query(since: datetime, user_id: int | None) -> int:
        queries.append(user_id)
        return spent[user_id]

    totals = TokenTotals(query, refresh_seconds=60, clock=lambda: clock[0])
    day = datetime(2026, 3, 1, tzinfo=UTC)
    assert await totals.since(day, user_id=7) == 40 and await totals.since(day) == 100
    record = UsageRecord(conversation_id=1, user_id=7, model="m", purpose="turn", usage=Usage(total_tokens=5))
    await totals.add([record], day + timedelta(hours=1))
    await totals.add([record], day - timedelta(hours=1))  # yesterday's usage does not count today
    assert await totals.since(day, user_id=7) == 45 and await totals.since(day) == 105
    assert queries == [7, None]  # answered from memory
    spent[None] = 900  # another process spent tokens: seen once the total is older than refresh_seconds
    clock[0] = 61
    assert await totals.since(day) == 900 and queries == [7, None, None]


async def test_a_turn_that_fails_after_the_model_still_records_its_tokens(
    model_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("contact flow bug")

    monkeypatch.setattr("agent.service.ContactFlow.start", broken)
    with respx.mock(base_url=fake.BASE_URL) as api:
        api.post("/responses").mock(return_value=fake.response(fake.answer("Оставьте телефон", ask_contact=True)))
        with pytest.raises(RuntimeError):
            await Chat(model_runtime).send(text="Хочу записаться")
    assert [row.total_tokens for row in await _rows(model_runtime, ModelUsage)] == [120]
    assert await _count(model_runtime, Message) == 1  # the user's message; no reply was given


async def test_a_turn_waits_out_another_process_holding_the_sqlite_write_lock(tmp_path: Path) -> None:
    """In place, a locked SQLite file answers "locked" at once; the turn is redone on the async engine,
    which waits for the lock instead of failing, and nothing is stored twice."""
    rt = build_runtime(make_settings(tmp_path))
    await rt.db.migrate()
    other = sqlite3.connect(rt.paths.database_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        opening = asyncio.create_task(rt.store.open_turn("telegram", "601", "kmipt", _question("tg:601")))
        await asyncio.sleep(0.3)
        assert not opening.done()
        other.execute("COMMIT")
        opened = await asyncio.wait_for(opening, timeout=10)
        assert opened.state is not None
        assert await _count(rt, Message) == 1 and await _count(rt, User) == 1
    finally:
        other.close()
        await rt.close()


async def test_database_errors_other_than_a_lock_are_not_retried(runtime: Runtime) -> None:
    calls: list[int] = []

    def broken(conn: Any) -> None:
        calls.append(1)
        conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError):
        await runtime.db.run(broken)
    assert calls == [1]


async def test_consent_typed_with_a_question_reaches_the_model_as_given(model_runtime: Runtime) -> None:
    """The consent the turn opened with is the one the model is told of, unless the turn itself records
    another: «да, согласна» with a question grants it, and the model's instructions must say so."""
    import json

    chat = Chat(model_runtime, user_id="consent-preload")
    with respx.mock(base_url=fake.BASE_URL) as api:
        route = api.post("/responses").mock(return_value=fake.response(fake.answer("Стоимость есть в каталоге.")))
        asked = await chat.send(text="Мой номер 8 916 555-12-34, запишите")
        assert [q.payload for q in asked.quick_replies] == ["consent:yes", "consent:no"]
        await chat.send(text="да, согласна. А сколько стоит ЕГЭ по физике онлайн?")
    assert route.called
    instructions = json.loads(route.calls[-1].request.content)["instructions"]
    assert '"consent_personal_data": true' in instructions
