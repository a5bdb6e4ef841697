"""N replicas behave as one: the limits that must hold for the whole service hold across processes
when REDIS_URL is set. Each test runs the production classes in 3 processes (tests/replica_worker.py)
against the real Redis, and runs the same scenario once without REDIS_URL to show the limit then
breaks (so each test fails without the shared limit). Small and bounded (each well under a minute
on a quiet machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, _truncate_all
from tests.crm_helpers import serving
from tests.fake_crm import FakeAmo
from tests.fakes.telegram_api import FakeBotAPI
from tests.replica_worker import AMO_TOKEN
from tests.replicas import START_TIMEOUT, flush_limits, most_in_any_window, replica_env, replicas

pytestmark = [pytest.mark.redis, pytest.mark.slow]
REPLICAS = 3


async def _send_from_replicas(redis_url: str | None, *, per_second: int, burst: int) -> tuple[list[float], list[float]]:
    """3 replicas each send to 6 chats of their own and 2 to one chat they share; returns the
    arrival times at the fake Bot API of all messages and of the shared chat's."""
    fake = FakeBotAPI()
    api_url = await fake.start()
    try:
        shared_chat = 5000
        args = [
            ["telegram-send", api_url, ",".join(str(c) for c in [*range(100 * r, 100 * r + 6), shared_chat, shared_chat])]
            for r in range(REPLICAS)
        ]
        env = replica_env(
            redis_url, TELEGRAM_SEND_GLOBAL_PER_SECOND=str(per_second),
            TELEGRAM_SEND_CHAT_PER_SECOND="1", TELEGRAM_SEND_CHAT_BURST=str(burst),
        )
        import asyncio

        with replicas(args, env) as processes:
            while any(p.poll() is None for p in processes):  # the fake answers on this event loop
                await asyncio.sleep(0.05)
    finally:
        await fake.stop()
    sent = [call for call in fake.calls if call.method == "sendMessage"]
    assert len(sent) == REPLICAS * 8
    return [c.at for c in sent], [c.at for c in sent if int(c.params["chat_id"]) == shared_chat]


async def test_telegram_send_limits_hold_for_all_replicas_together(redis_url: str) -> None:
    flush_limits(redis_url)
    all_sent, shared_chat = await _send_from_replicas(redis_url, per_second=8, burst=2)
    # The limiter counts a message when it is let go; on a loaded 2-core machine a process may wait
    # a scheduler slice or two before its request reaches the fake, so arrivals are checked in windows
    # shorter than the limiter's (8 per 1 s overall; 2 per 2 s per chat, checked per 1 s).
    assert most_in_any_window(all_sent, 0.8) <= 8
    assert most_in_any_window(shared_chat, 1.0) <= 2
    # Without Redis each replica keeps its own windows: together they send 3x the limits at once.
    all_sent, shared_chat = await _send_from_replicas(None, per_second=8, burst=2)
    assert most_in_any_window(all_sent, 0.8) > 8
    assert most_in_any_window(shared_chat, 1.0) > 2


def _amo_from_replicas(redis_url: str | None, count: int) -> list[float]:
    """When each replica's client sent its requests (time.time(), after every limiter): the fake runs
    in a thread of this process, and on a loaded machine it logged arrivals up to half a second late
    and bunched, which says more about its thread than about the pace."""
    fake = FakeAmo(token=AMO_TOKEN)
    fake.limit_per_second = 1000  # answer everything: the test counts what was sent
    with serving(fake):
        args = [["amo-check", fake.url, str(count)] for _ in range(REPLICAS)]
        with replicas(args, replica_env(redis_url)) as processes:
            pass
        sent = [float(t) for p in processes for t in (p.stdout.read() if p.stdout else "").split()]
    assert len([e for e in fake.log if e.path.endswith("/account")]) == len(sent)
    return sent


async def test_amo_requests_from_all_replicas_stay_under_7_per_second(redis_url: str) -> None:
    flush_limits(redis_url)
    times = _amo_from_replicas(redis_url, 4)
    assert len(times) == REPLICAS * 4
    # One shared window of 5 slots per second; the account allows 7, and the 2 spare absorb a replica
    # that gets the CPU late between taking its slot and sending (tenths of a second at load 10+).
    assert most_in_any_window(times, 1.0) <= 7, [round(t - min(times), 2) for t in sorted(times)]
    # Each replica alone spaces its requests 0.2 s apart; three of them without a shared window: 15/s.
    alone = _amo_from_replicas(None, 4)
    assert most_in_any_window(alone, 1.0) > 7, [round(t - min(alone), 2) for t in sorted(alone)]


@pytest.mark.postgres
async def test_daily_token_budget_counts_every_replicas_spend_at_once(redis_url: str, postgres_url: str, tmp_path: Path) -> None:
    from adapters.storage.database import Database
    from adapters.storage.models import User
    from adapters.storage.repositories import ConsentRepository, LeadRepository, UserRepository
    from adapters.storage.stores import SqlStore
    from adapters.storage.models import utcnow

    # A Redis database of its own: the day's "all users" total is one key for everything that records
    # usage with this Redis, and a process of another test or benchmark running beside this one (the
    # fake Responses server's 120 tokens a call) once landed in it between the two reads: (3000, 3120).
    redis_url = redis_url.rsplit("/", 1)[0] + "/14"
    flush_limits(redis_url)
    db = Database(postgres_url)
    await db.migrate()
    _truncate_all(postgres_url)
    user = await UserRepository(db).get_or_create("telegram", "777")
    assert isinstance(user, User) and user.id is not None
    day = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)

    async def spent_after_others(redis: str | None) -> tuple[int, int]:
        store = SqlStore(db, LeadRepository(db), ConsentRepository(db), redis_url=redis)
        try:
            before = await store.tokens_today(day, user_id=user.id)  # the keys are read from the database
            args = [["record-tokens", postgres_url, str(user.id), "1000"] for _ in range(REPLICAS)]
            processes = [
                subprocess.Popen([sys.executable, "-m", "tests.replica_worker", *a], cwd=REPO, env=replica_env(redis))
                for a in args
            ]
            assert all(p.wait(START_TIMEOUT) == 0 for p in processes)
            after = await store.tokens_today(day, user_id=user.id)  # both kept: one MGET
            return after[0] - before[0], after[1] - before[1]
        finally:
            await store.tokens.aclose()

    try:
        # With Redis, this process sees the others' 3 x 1000 tokens the moment they are committed.
        assert await spent_after_others(redis_url) == (3000, 3000)
        # Without it, its totals are a minute old: the others' spend is invisible, the budget soft.
        assert await spent_after_others(None) == (0, 0)
    finally:
        await db.dispose()
        _truncate_all(postgres_url)
