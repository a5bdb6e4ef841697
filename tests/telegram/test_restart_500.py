"""Fault suite: the service restarted (SIGTERM, then started again) in the middle of 500 queued
updates → every update processed, none twice, each chat still in order."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.crm_helpers import wait_for
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.test_processes import (
    FUNNEL_REPLIES,
    START_TIMEOUT,
    _env,
    child,
    database,
    first_replies,
    funnel,
    scalar,
)

pytestmark = pytest.mark.slow
CHATS = 100  # × 5 funnel updates = 500


async def test_restart_in_the_middle_of_500_queued_updates(
    tmp_path: Path, fake_api: FakeBotAPI, database_url: str
) -> None:
    chats = [9000 + n for n in range(CHATS)]
    script = [update for index, chat in enumerate(chats) for update in funnel(index * 10 + 1, chat)]
    assert len(script) == 500
    for update in script:
        fake_api.push_update(update)
    env = _env(tmp_path, fake_api.base_url, database_url, TELEGRAM_MODE="polling")
    log = tmp_path / "bot.log"
    async with database(database_url) as db:
        with child("bot", env, log) as first:

            async def some_done() -> bool:
                return (await scalar(db, "SELECT count(*) FROM telegram_updates WHERE status = 'done'") or 0) >= 50

            await wait_for(some_done, timeout=START_TIMEOUT)
            first.send_signal(signal.SIGTERM)
            assert first.wait(30) == 0  # a graceful stop: in-flight updates finished or handed back
        done_before_restart = await scalar(db, "SELECT count(*) FROM telegram_updates WHERE status = 'done'")
        assert done_before_restart < 500, "the restart must happen in the middle of the work"

        with child("bot", env, log):

            async def all_done() -> bool:
                return await scalar(db, "SELECT count(*) FROM telegram_updates WHERE status = 'done'") == 500

            await wait_for(all_done, timeout=START_TIMEOUT * 3)
        assert await scalar(db, "SELECT count(*) FROM telegram_updates") == 500
        assert await scalar(db, "SELECT count(*) FROM messages WHERE role = 'user'") == 500  # each stored once
        assert await scalar(db, "SELECT max(attempts) FROM telegram_updates") <= 2
    for chat in chats:
        assert list(dict.fromkeys(first_replies(fake_api, chat))) == FUNNEL_REPLIES, chat
