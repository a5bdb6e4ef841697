"""The durable update queue and its workers on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from adapters.retry import Backoff
from adapters.storage.database import Database
from adapters.storage.models import utcnow
from adapters.telegram.queue import ClaimedUpdate, UpdateQueue, chat_of
from adapters.telegram.workers import PermanentFailure, UpdateWorkers
from agent.settings import Settings
from tests.crm_helpers import wait_for
from tests.fakes import updates


def make_queue(db: Database, **overrides: float) -> UpdateQueue:
    values = {"max_attempts": 3, "lease_seconds": 30.0, "retention_hours": 1.0}
    values.update(overrides)
    return UpdateQueue(db, retry=Backoff(0.05, 3600.0), **values)  # type: ignore[arg-type]


async def put(queue: UpdateQueue, update_id: int, chat: int) -> bool:
    payload = updates.message(update_id, chat, f"m{update_id}")
    return await queue.enqueue(update_id, chat_of(payload), json.dumps(payload))


async def status_of(db: Database, update_id: int) -> tuple[str, int, str | None]:
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, attempts, last_error FROM telegram_updates WHERE update_id = :u"), {"u": update_id}
            )
        ).one()
    return row[0], row[1], row[2]


def test_chat_of_finds_the_chat_or_sender() -> None:
    assert chat_of(updates.message(1, 55, "hi")) == 55
    assert chat_of(updates.callback(2, 56, "x")) == 56
    assert chat_of({"update_id": 3, "inline_query": {"id": "q", "from": {"id": 57}, "query": ""}}) == 57
    assert chat_of({"update_id": 4}) is None


async def test_staff_group_topics_are_lines_of_their_own(db: Database) -> None:
    """Each forum topic of the staff group is ordered like a chat: its updates one after another,
    different topics (and the group's general chat) at once."""
    group = -1001234567890
    first = [updates.staff(1, group, 9, "a", thread=500), updates.staff(2, group, 9, "b", thread=500)]
    other = [updates.staff(3, group, 9, "c", thread=501), updates.staff(4, group, 9, "plain")]
    keys = [chat_of(u) for u in first + other]
    assert keys[0] == keys[1] and len(set(keys)) == 3 and keys[3] == group
    assert all(k < -(2**62) for k in keys[:3])  # no real chat id lies there
    queue = make_queue(db)
    await queue.enqueue_many(first + other)
    assert [c.update_id for c in await queue.claim("w", 10)] == [1, 3, 4]


def test_the_queue_retries_with_its_backoff_from_settings() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    retry = Backoff(settings.telegram_queue_retry_base_seconds, settings.telegram_queue_retry_max_seconds)
    assert [retry.delay(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert retry.delay(40) == 3600.0


async def test_duplicates_are_not_queued_twice(db: Database) -> None:
    queue = make_queue(db)
    assert await put(queue, 1, 10) is True
    assert await put(queue, 1, 10) is False
    assert await queue.enqueue_many([updates.message(1, 10, "again"), updates.message(2, 10, "new")]) == 1


async def test_concurrent_requests_share_one_commit_and_a_caller_that_goes_away_still_stores(db: Database) -> None:
    """Webhook requests arriving together are committed as one batch (one statement on SQLite): each
    learns whether its update was new, the same update twice in the batch is new once, and a request
    cancelled while waiting (the client went away) neither stops the others' write nor loses its own."""
    queue = make_queue(db)
    await put(queue, 1, 10)
    gone = asyncio.create_task(put(queue, 5, 30))
    batch = [asyncio.create_task(put(queue, update_id, chat)) for update_id, chat in [(1, 10), (2, 10), (3, 20), (2, 10), (4, 40)]]
    await asyncio.sleep(0)  # every request handed its update in; the flush has not run yet
    gone.cancel()
    assert await asyncio.gather(*batch) == [False, True, True, False, True]
    with pytest.raises(asyncio.CancelledError):
        await gone
    claimed = await queue.claim("w", 10)
    assert [(c.update_id, c.chat_id) for c in claimed] == [(1, 10), (3, 20), (4, 40), (5, 30)]
    assert len({c.received_at for c in claimed[1:]}) == 1  # the batch's one moment
    assert [json.loads(c.payload)["message"]["text"] for c in claimed] == ["m1", "m3", "m4", "m5"]


async def test_claim_takes_one_head_per_chat_in_update_order(db: Database) -> None:
    queue = make_queue(db)
    for update_id, chat in [(1, 10), (2, 20), (3, 10), (4, 30), (5, 20)]:
        await put(queue, update_id, chat)
    first = await queue.claim("w1", 10)
    assert [c.update_id for c in first] == [1, 2, 4]  # the heads of chats 10, 20, 30
    assert await queue.claim("w2", 10) == []  # the rest wait for their chat's earlier update
    await queue.complete(first[0], "w1")
    second = await queue.claim("w2", 10)
    assert [c.update_id for c in second] == [3]


async def test_a_claim_tells_when_the_update_arrived(db: Database) -> None:
    """The feedback delay counts from the arrival, however long the update then waited for a worker."""
    queue = make_queue(db)
    arrived = utcnow()
    await put(queue, 1, 10)
    await asyncio.sleep(0.3)
    (item,) = await queue.claim("w", 10)
    assert item.received_at is not None and item.received_at.tzinfo is not None
    assert abs((item.received_at - arrived).total_seconds()) < 0.2


async def test_failure_retries_with_backoff_then_dead_letters(db: Database) -> None:
    queue = make_queue(db, max_attempts=2)
    # Half a second before the retry is due: the claim right after the failure must find it not due
    # even on a loaded machine (with the helper's 0.05 s it sometimes already was).
    queue.retry = Backoff(0.5, 3600.0)
    await put(queue, 1, 10)
    await put(queue, 2, 10)
    item = (await queue.claim("w", 5))[0]
    assert await queue.fail(item, "w", "boom") == "retry"
    status, attempts, error = await status_of(db, 1)
    assert (status, attempts, error) == ("retry", 1, "boom")
    assert await queue.claim("w", 5) == []  # not due yet, and update 2 waits behind it
    await asyncio.sleep(0.55)
    item = (await queue.claim("w", 5))[0]
    assert item.update_id == 1 and item.attempts == 2
    assert await queue.fail(item, "w", "boom again") == "dead"
    assert (await status_of(db, 1))[0] == "dead"
    # A dead update no longer holds up its chat.
    assert [c.update_id for c in await queue.claim("w", 5)] == [2]
    stats = await queue.stats()
    assert stats["counts"]["dead"] == 1 and (await status_of(db, 1))[2] == "boom again"


async def test_expired_lease_is_reclaimed_and_the_old_owner_cannot_finish_it(db: Database) -> None:
    queue = make_queue(db, lease_seconds=1.0)
    await put(queue, 1, 10)
    first = (await queue.claim("dead-worker", 5))[0]
    assert await queue.claim("other", 5) == []
    await asyncio.sleep(1.1)
    again = (await queue.claim("other", 5))[0]
    assert again.update_id == 1 and again.attempts == 2
    await queue.complete(first, "dead-worker")  # too late: no longer its claim
    assert (await status_of(db, 1))[0] == "processing"
    await queue.complete(again, "other")
    assert (await status_of(db, 1))[0] == "done"


async def test_heartbeat_keeps_a_long_update_claimed(db: Database) -> None:
    queue = make_queue(db, lease_seconds=1.0)
    await put(queue, 1, 10)
    await queue.claim("busy", 5)
    for _ in range(3):
        await asyncio.sleep(0.4)
        await queue.extend_leases("busy")
    assert await queue.claim("other", 5) == []


async def test_release_hands_back_without_counting_an_attempt(db: Database) -> None:
    queue = make_queue(db)
    await put(queue, 1, 10)
    item = (await queue.claim("w", 5))[0]
    await queue.release(item, "w")
    assert await status_of(db, 1) == ("queued", 0, None)


async def test_maintenance_dead_letters_crash_loops_and_purges_old_done_rows(db: Database) -> None:
    queue = make_queue(db, max_attempts=1, lease_seconds=1.0)
    await put(queue, 1, 10)
    await put(queue, 2, 20)
    crashed, finished = await queue.claim("w", 5)
    await queue.complete(finished, "w")
    async with db.engine.begin() as conn:
        old = (utcnow() - timedelta(hours=2)).replace(tzinfo=None)
        await conn.execute(text("UPDATE telegram_updates SET updated_at = :t WHERE update_id = 2"), {"t": old})
    await asyncio.sleep(1.1)
    assert await queue.maintain() == (1, 1)
    assert (await status_of(db, crashed.update_id))[0] == "dead"
    assert (await queue.stats())["counts"]["done"] == 0


async def test_workers_run_chats_concurrently_and_each_chat_in_order(db: Database) -> None:
    queue = make_queue(db)
    order: dict[int, list[int]] = {}
    running = 0
    peak = 0

    async def handle(item: ClaimedUpdate) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        order.setdefault(item.chat_id, []).append(item.update_id)  # type: ignore[arg-type]
        running -= 1

    workers = UpdateWorkers(queue, handle, concurrency=8, poll_seconds=0.05)
    task = asyncio.create_task(workers.run())
    expected: dict[int, list[int]] = {}
    for update_id in range(1, 41):
        chat = 100 + update_id % 8
        expected.setdefault(chat, []).append(update_id)
        await put(queue, update_id, chat)
    await wait_for(lambda: workers.processed == 40, timeout=20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert order == expected
    assert peak > 1


async def test_workers_retry_failures_and_dead_letter_bad_payloads(db: Database) -> None:
    queue = make_queue(db)
    calls: list[int] = []

    async def handle(item: ClaimedUpdate) -> None:
        calls.append(item.update_id)
        if item.update_id == 1 and item.attempts == 1:
            raise RuntimeError("flaky")
        if item.update_id == 2:
            raise PermanentFailure("not an update")

    dead: list[int] = []

    async def on_dead(item: ClaimedUpdate) -> None:
        dead.append(item.update_id)

    workers = UpdateWorkers(queue, handle, concurrency=4, poll_seconds=0.02, on_dead=on_dead)
    task = asyncio.create_task(workers.run())
    await put(queue, 1, 10)
    await put(queue, 2, 20)
    await wait_for(lambda: calls.count(1) == 2 and 2 in calls)
    await wait_for(lambda: workers.processed == 1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await status_of(db, 1) == ("done", 2, None)
    assert (await status_of(db, 2))[:2] == ("dead", 1)
    assert dead == []  # on_dead is for updates that used up their retries, not for bad payloads


async def test_stop_finishes_short_updates_and_releases_long_ones(db: Database) -> None:
    queue = make_queue(db)
    started: set[int] = set()

    async def handle(item: ClaimedUpdate) -> None:
        started.add(item.update_id)
        await asyncio.sleep(0.1 if item.update_id == 1 else 30)

    workers = UpdateWorkers(queue, handle, concurrency=4, poll_seconds=0.02, shutdown_grace_seconds=0.5)
    task = asyncio.create_task(workers.run())
    await put(queue, 1, 10)
    await put(queue, 2, 20)
    await wait_for(lambda: started == {1, 2})
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (await status_of(db, 1))[0] == "done"
    assert await status_of(db, 2) == ("queued", 0, None)


async def test_confirm_renews_the_claim_and_fails_once_another_worker_took_it(db: Database) -> None:
    queue = make_queue(db, lease_seconds=1.0)
    await put(queue, 1, 10)
    first = (await queue.claim("slow", 5))[0]
    await asyncio.sleep(0.7)
    assert await queue.confirm(first, "slow")  # still ours, and the lease runs a second from now
    await asyncio.sleep(0.5)
    assert await queue.claim("other", 5) == []  # past the first lease, within the renewed one
    await asyncio.sleep(0.6)
    again = (await queue.claim("other", 5))[0]
    assert not await queue.confirm(first, "slow")
    assert await queue.confirm(again, "other")


async def test_a_worker_whose_lease_lapsed_leaves_the_reply_to_the_one_that_took_over(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A starved worker renews its lease too late and another claims the update: only the new owner
    gets past the check before the send (adapters/telegram/claims.py), so the user is answered once."""
    from adapters.telegram.claims import ensure_claim

    queue = make_queue(db, lease_seconds=0.5)
    sent: list[str] = []
    starved = asyncio.Event()

    def handler(name: str, wait: float) -> object:
        async def handle(item: ClaimedUpdate) -> None:
            if name == "starved":
                starved.set()
            await asyncio.sleep(wait)  # the turn: the model, the stored reply
            await ensure_claim()
            sent.append(name)
        return handle

    slow = UpdateWorkers(queue, handler("starved", 1.5), concurrency=1, poll_seconds=0.05)  # type: ignore[arg-type]

    async def no_heartbeat(worker: str) -> None:  # its event loop never got to renew the lease
        if worker != slow.worker_id:
            await UpdateQueue.extend_leases(queue, worker)

    monkeypatch.setattr(queue, "extend_leases", no_heartbeat)
    await put(queue, 1, 10)
    first = asyncio.create_task(slow.run())
    await starved.wait()
    second_workers = UpdateWorkers(queue, handler("took-over", 0.0), concurrency=1, poll_seconds=0.05)  # type: ignore[arg-type]
    second = asyncio.create_task(second_workers.run())
    try:
        await wait_for(lambda: sent == ["took-over"], timeout=5)
        await asyncio.sleep(1.2)  # the starved worker's turn ends: it must not send
        assert sent == ["took-over"]
        assert (await status_of(db, 1))[:2] == ("done", 2)
    finally:
        for task in (first, second):
            task.cancel()
        await asyncio.gather(first, second, return_exceptions=True)


async def test_confirm_tells_a_reclaim_by_the_same_worker_from_the_first_claim(db: Database) -> None:
    """One process re-takes its own lapsed update (the same worker name): the first claim may no longer
    send, the second may."""
    queue = make_queue(db, lease_seconds=1.0)
    await put(queue, 1, 10)
    first = (await queue.claim("proc", 5))[0]
    await asyncio.sleep(1.1)
    second = (await queue.claim("proc", 5))[0]
    assert second.attempts == first.attempts + 1
    assert not await queue.confirm(first, "proc")
    assert await queue.confirm(second, "proc")


async def test_a_slow_last_attempt_dead_lettered_meanwhile_still_answers(db: Database) -> None:
    """maintain() dead-letters a lapsed last attempt (it cannot tell a slow worker from a dead one); no
    other claim exists, so the slow one still sends its reply instead of leaving the user unanswered."""
    queue = make_queue(db, lease_seconds=1.0, max_attempts=1)
    await put(queue, 1, 10)
    only = (await queue.claim("slow", 5))[0]
    await asyncio.sleep(1.1)
    await queue.maintain()
    assert (await status_of(db, 1))[0] == "dead"
    assert await queue.confirm(only, "slow")


async def test_a_batch_stores_its_moment_as_sqlalchemy_writes_it(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim compares the stored timestamps as text on SQLite: the batch insert must write them in
    SQLAlchemy's format, with the microseconds, also for a moment on a whole second."""
    from datetime import UTC, datetime

    import adapters.telegram.queue as queue_module

    moment = datetime(2026, 12, 5, 4, 0, 49, tzinfo=UTC)
    monkeypatch.setattr(queue_module, "utcnow", lambda: moment)
    queue = make_queue(db)
    await put(queue, 1, 10)
    async with db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT CAST(created_at AS TEXT) FROM telegram_updates"))).scalar_one()
    assert stored.startswith("2026-12-05 04:00:49")
    if db.is_sqlite:
        assert stored == "2026-12-05 04:00:49.000000"
