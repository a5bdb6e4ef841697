"""Idempotency keys are scoped to the sender: a reused update id never answers with another user's turn.

Telegram restarts update ids at random after a week of silence (shared/reference/telegram.md), so once
the queue's duplicate window has passed, the same update_id can arrive again from someone else.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from tests.crm_helpers import wait_for
from tests.fakes import updates
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import running_service, telegram_settings


async def test_reused_update_id_after_the_purge_answers_the_new_user(
    tmp_path: Path, fake_api: FakeBotAPI, database_url: str
) -> None:
    # Done rows are purged after the retention (48 h in production); a fraction of a second here.
    settings = telegram_settings(tmp_path, fake_api.base_url, database_url, telegram_queue_retention_hours=0.0001)
    async with running_service(settings, fake_api) as service:
        await service.deliver(updates.message(500, 7001, "Здравствуйте, 9 класс, готовимся к ОГЭ по математике"))
        await service.settle(500)
        await wait_for(lambda: len(fake_api.sent_to(7001)) >= 1)
        first_reply = fake_api.sent_to(7001)[-1]["text"]

        await asyncio.sleep(0.5)
        await service.runtime.telegram.queue.maintain()  # type: ignore[union-attr]
        async with service.runtime.db.engine.connect() as conn:
            left = (await conn.execute(text("SELECT count(*) FROM telegram_updates"))).scalar()
        assert left == 0, "the purge should have forgotten update 500"

        await service.deliver(updates.message(500, 7002, "Добрый день! Сколько стоит летний лагерь?"))
        await service.settle(500)
        await wait_for(lambda: len(fake_api.sent_to(7002)) >= 1)
        async with service.runtime.db.engine.connect() as conn:
            stored = (
                await conn.execute(
                    text(
                        "SELECT m.content FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                        "JOIN users u ON u.id = c.user_id WHERE u.external_id = '7002' AND m.role = 'user'"
                    )
                )
            ).scalars().all()
    # The second user's own message is stored and answered, not dropped in favour of the first user's turn.
    assert stored == ["Добрый день! Сколько стоит летний лагерь?"]
    assert fake_api.sent_to(7002)[-1]["text"] != first_reply
