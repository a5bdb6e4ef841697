"""bench/scale_webhooks.py at CI size: 3 webhook processes on one PostgreSQL and Redis, 600 updates
across 60 chats posted round-robin, one process killed -9 mid-way and restarted: every update
processed exactly once, each chat in order, the fake Bot API never over the global or per-chat limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import scale_webhooks as bench

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


async def test_three_webhook_processes_behave_as_one_bot(tmp_path: Path, redis_url: str) -> None:
    outcome = await bench.run(600, 60, 3, timeout=240, workdir=tmp_path)  # ~40-50 s at load 5-7
    report = outcome.report()
    assert outcome.done == outcome.updates == 600, report
    assert outcome.stored_once, report
    assert outcome.chats_in_order == 60, report
    assert outcome.messages_sent >= 600, report
    # The fake Bot API stamps arrivals on a loop of its own (bench.FakeBotAPIThread).
    assert outcome.max_per_second <= bench.GLOBAL_PER_SECOND, report
    assert outcome.max_chat_per_second <= bench.CHAT_BURST, report
